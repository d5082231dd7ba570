# Reference values for tests/test_power.py (power, MDES and sample size).
#
# Run from the repository root:  Rscript tests/reference/make_power_reference.R
# Needs R >= 4.2 with the packages mvtnorm and pwr (Debian: r-cran-mvtnorm, r-cran-pwr).
# Writes tests/reference/power_reference.csv. CI has no R: the CSV is committed.
#
# Nothing here calls cis_eval. The rows come from four kinds of source:
#
#   formula      PowerUp!/PowerUpR (Dong & Maynard 2013; Bulus et al., PowerUpR 1.1.0,
#                files R/bira2c1.R, R/bira2f1.R, R/bira2r1.R, R/utils.R) and PUMP
#                (Hunter, Miratrix & Porter; R/designs_and_models.R: calc_SE, calc_df)
#                re-typed below in base R and evaluated with R's qt/pt (noncentral pt for
#                PowerUpR's power), uniroot for exact sample sizes.
#   pwr          pwr::pwr.t.test (two-sample t test, noncentral t, both tails in 1.3-0).
#   mvtnorm      numerical integration of the multivariate t (mvtnorm::pmvt/qmvt,
#                Genz-Bretz) for multiple-testing quantities that have a closed form as a
#                rectangle probability: Bonferroni/Holm 1-minimal power, Bonferroni
#                complete power, Westfall-Young single-step critical values and power.
#   rsim         PUMP's simulation method re-implemented in R: mvtnorm::rmvt draws,
#                stats::p.adjust (bonferroni, holm, BH), Westfall-Young adjusted p-values
#                computed from null draws over the actual remaining hypotheses (no
#                exchangeability shortcut), 100,000 draws.
#   published    printed outputs transcribed from documentation: the PowerUpR
#                "Cross-checks" vignette (2018), the PUMP vignettes ("Demonstration of the
#                PUMP package", "Demo and discussion of the pump_sample method"), values
#                recorded in PUMP's test suite (tests/testthat/test-designs_two.R,
#                test-porter-benchmark.R, the latter read from Porter 2018, Figure 1), and
#                Bloom's multiplier table and worked examples of the WWC power notes.
#
# PUMP results for three-level designs are used through PUMP's own remark that power
# depends on the design only through the standard error, the degrees of freedom and the
# correlation of the test statistics: such a row is mapped to the random-impacts model
# with ICC = 0 (df = J - g2 - 1, SE = sqrt(1 / (P(1-P) J n))), choosing J and n so that
# SE and df equal PUMP's. The mapped inputs are what the row stores.

suppressMessages({
  library(mvtnorm)
  library(pwr)
})
set.seed(20240611)

out_path <- file.path("tests", "reference", "power_reference.csv")
rows <- list()

add <- function(source, case, quantity, value, ..., tolerance = NA, ref_mc_se = NA,
                note = "") {
  base <- list(
    model = "constant", schools = NA, students_per_school = NA, share_treated = 0.5,
    r2 = "0", icc = "0", omega = "0", r2_school_impact = "0", n_covariates = 0,
    n_school_covariates = 0, alpha = 0.05, tails = 2, target_power = 0.8,
    effect_size = "", outcomes = 1, rho = 0, mtp = "none", definition = "individual",
    d = 1, approximation = "shifted", control_rate = NA
  )
  args <- list(...)
  for (k in names(args)) base[[k]] <- args[[k]]
  for (k in c("r2", "icc", "omega", "r2_school_impact", "effect_size")) {
    base[[k]] <- paste(format(base[[k]], digits = 15, trim = TRUE), collapse = ";")
  }
  rows[[length(rows) + 1]] <<- data.frame(
    source = source, case = case, quantity = quantity, base,
    value = value, tolerance = tolerance, ref_mc_se = ref_mc_se, note = note,
    stringsAsFactors = FALSE
  )
}

# ------------------------------------------------------------------ formula (PowerUp!, PUMP)

df_of <- function(model, J, n, g = 0, g2 = 0) {
  switch(model,
    constant = J * (n - 1) - g - 1,      # PowerUpR bira2c1, PUMP d2.1_m2fc
    fixed = J * (n - 2) - g,             # PowerUpR bira2f1, PUMP d2.1_m2ff
    random = J - g2 - 1,                 # PowerUpR bira2r1 (g2 = level-2 covariates)
    unblocked = J * n - g - 2            # PowerUpR ira1r1 with n = J * n students
  )
}
se_of <- function(model, J, n, p, r2, icc, omega = 0, r2t = 0) {
  switch(model,
    constant = sqrt((1 - icc) * (1 - r2) / (p * (1 - p) * J * n)),   # PUMP calc_SE
    fixed = sqrt((1 - icc) * (1 - r2) / (p * (1 - p) * J * n)),
    random = sqrt(icc * omega * (1 - r2t) / J + (1 - icc) * (1 - r2) / (p * (1 - p) * J * n)),
    unblocked = sqrt((1 - r2) / (p * (1 - p) * J * n))
  )
}
# PowerUpR .mdes.fun: M = T1 + T2 (T1 - T2 when power < .5, T2 = |qt(power)|)
bloom_m <- function(df, power, alpha, two) {
  T1 <- if (two) abs(qt(alpha / 2, df)) else abs(qt(alpha, df))
  T2 <- abs(qt(power, df))
  if (power >= 0.5) T1 + T2 else T1 - T2
}
# PowerUpR .power.fun: noncentral t, both tails when two-tailed
power_nct <- function(es, sse, df, alpha, two) {
  lam <- es / sse
  if (two) {
    1 - pt(qt(alpha / 2, df, lower.tail = FALSE), df, lam) +
      pt(-qt(alpha / 2, df, lower.tail = FALSE), df, lam)
  } else {
    1 - pt(qt(alpha, df, lower.tail = FALSE), df, lam)
  }
}
# PUMP's unadjusted power: central t shifted by es / SE, both tails
power_shift <- function(es, sse, df, alpha, two) {
  lam <- es / sse
  if (two) {
    c <- qt(1 - alpha / 2, df)
    pt(c - lam, df, lower.tail = FALSE) + pt(-c - lam, df)
  } else {
    pt(qt(1 - alpha, df) - lam, df, lower.tail = FALSE)
  }
}
# exact inverse of the noncentral power (what pwr.t.test solves for d)
mdes_nct <- function(sse, df, power, alpha, two) {
  uniroot(function(es) power_nct(es, sse, df, alpha, two) - power,
          c(1e-8, 50 * sse), tol = 1e-13)$root
}

grid <- list(
  list(model = "constant", J = 20, n = 60, p = 0.5, r2 = 0.5, icc = 0, g = 0, g2 = 0),
  list(model = "constant", J = 14, n = 55, p = 0.5, r2 = 0, icc = 0, g = 0, g2 = 0),
  list(model = "constant", J = 28, n = 73.2, p = 0.51, r2 = 0.4, icc = 0.1, g = 3, g2 = 0),
  list(model = "constant", J = 6, n = 12, p = 0.4, r2 = 0.3, icc = 0.25, g = 2, g2 = 0),
  list(model = "fixed", J = 3, n = 55, p = 0.5, r2 = 0, icc = 0, g = 0, g2 = 0),
  list(model = "fixed", J = 28, n = 73.2, p = 0.6, r2 = 0.5, icc = 0.15, g = 5, g2 = 0),
  list(model = "fixed", J = 10, n = 8, p = 0.5, r2 = 0.2, icc = 0.05, g = 1, g2 = 0),
  list(model = "random", J = 480, n = 83, p = 0.5, r2 = 0, icc = 0.35, omega = 0.10,
       g = 0, g2 = 0),
  list(model = "random", J = 28, n = 73.2, p = 0.5, r2 = 0.4, icc = 0.1, omega = 0.3,
       r2t = 0.2, g = 3, g2 = 2),
  list(model = "random", J = 8, n = 40, p = 0.3, r2 = 0.6, icc = 0.2, omega = 1.0,
       r2t = 0.5, g = 0, g2 = 1),
  list(model = "unblocked", J = 1, n = 250, p = 0.5, r2 = 0, icc = 0, g = 0, g2 = 0),
  list(model = "unblocked", J = 4, n = 31, p = 0.35, r2 = 0.45, icc = 0, g = 2, g2 = 0)
)
i <- 0
for (x in grid) {
  i <- i + 1
  omega <- if (is.null(x$omega)) 0 else x$omega
  r2t <- if (is.null(x$r2t)) 0 else x$r2t
  df <- df_of(x$model, x$J, x$n, x$g, x$g2)
  sse <- se_of(x$model, x$J, x$n, x$p, x$r2, x$icc, omega, r2t)
  for (two in c(TRUE, FALSE)) {
    for (pw in c(0.8, 0.9, 0.4)) {
      for (alpha in c(0.05, 0.1)) {
        M <- bloom_m(df, pw, alpha, two)
        es <- 0.8 * M * sse
        case <- sprintf("grid%02d-%s-%s-p%.2f-a%.2f", i, x$model, if (two) "2t" else "1t", pw, alpha)
        common <- list(model = x$model, schools = x$J, students_per_school = x$n,
                       share_treated = x$p, r2 = x$r2, icc = x$icc, omega = omega,
                       r2_school_impact = r2t, n_covariates = x$g,
                       n_school_covariates = x$g2, alpha = alpha, tails = if (two) 2 else 1,
                       target_power = pw)
        do.call(add, c(list("formula", case, "df", df, tolerance = 1e-9), common))
        do.call(add, c(list("formula", case, "std_error", sse, tolerance = 1e-12), common))
        do.call(add, c(list("formula", case, "multiplier", M, tolerance = 1e-9), common))
        do.call(add, c(list("formula", case, "mdes", M * sse, tolerance = 1e-9), common))
        if (pw == 0.8 && alpha == 0.05) {
          for (pi in c(0.1, 0.45)) {
            # binary outcome in percentage points: MDES x sqrt(pi (1 - pi)) x 100
            do.call(add, c(list("formula", case, "mde_pp", 100 * M * sse * sqrt(pi * (1 - pi)),
                                tolerance = 1e-9, control_rate = pi), common))
          }
        }
        do.call(add, c(list("formula", case, "power", power_shift(es, sse, df, alpha, two),
                            tolerance = 1e-9, effect_size = es), common))
        do.call(add, c(list("formula", case, "power", power_nct(es, sse, df, alpha, two),
                            tolerance = 1e-8, effect_size = es), common,
                       list(approximation = "noncentral")))
        if (pw > 0.5) {
          do.call(add, c(list("formula", case, "mdes", mdes_nct(sse, df, pw, alpha, two),
                              tolerance = 1e-7), common, list(approximation = "noncentral")))
        }
      }
    }
  }
}

# Exact sample sizes: the continuous root of MDES(size) = effect, rounded up (the smallest
# whole number reaching the effect). PowerUpR's mrss loop rounds an iterated solution to
# the nearest whole number instead; its answer is stored as well (quantity "*_powerup").
mrss_powerup <- function(model, es, n, p, r2, g, g2, icc, omega, r2t, power, alpha, two) {
  J0 <- 10; tol <- 0.10; i <- 0; conv <- FALSE
  while (i <= 100 & conv == FALSE) {
    df <- df_of(model, J0, n, g, g2)
    if (df <= 0 | is.infinite(df)) break
    M <- bloom_m(df, power, alpha, two)
    J1 <- switch(model,
      random = (M / es)^2 * (icc * omega * (1 - r2t) + (1 - icc) * (1 - r2) / (p * (1 - p) * n)),
      (M / es)^2 * ((1 - icc) * (1 - r2) / (p * (1 - p) * n)))
    if (abs(J1 - J0) < tol) conv <- TRUE
    J0 <- (J1 + J0) / 2
    i <- i + 1
  }
  round(J0)
}
ss_cases <- list(
  list(model = "constant", es = 0.25, n = 55, p = 0.5, r2 = 0, icc = 0, g = 0, g2 = 0),
  list(model = "constant", es = 0.12, n = 70, p = 0.5, r2 = 0.4, icc = 0.1, g = 2, g2 = 0),
  list(model = "fixed", es = 0.25, n = 55, p = 0.5, r2 = 0, icc = 0, g = 0, g2 = 0),
  list(model = "fixed", es = 0.2, n = 20, p = 0.4, r2 = 0.3, icc = 0.2, g = 1, g2 = 0),
  list(model = "random", es = 0.15, n = 83, p = 0.5, r2 = 0, icc = 0.35, omega = 0.1,
       g = 0, g2 = 0),
  list(model = "random", es = 0.2, n = 60, p = 0.5, r2 = 0.4, icc = 0.15, omega = 0.5,
       r2t = 0.3, g = 0, g2 = 2)
)
i <- 0
for (x in ss_cases) {
  i <- i + 1
  omega <- if (is.null(x$omega)) 0 else x$omega
  r2t <- if (is.null(x$r2t)) 0 else x$r2t
  for (two in c(TRUE, FALSE)) {
    f <- function(J) {
      df <- df_of(x$model, J, x$n, x$g, x$g2)
      bloom_m(df, 0.8, 0.05, two) * se_of(x$model, J, x$n, x$p, x$r2, x$icc, omega, r2t) - x$es
    }
    lo <- if (x$model == "random") x$g2 + 1 + 1e-6 else 1.01
    root <- uniroot(f, c(lo + 0.5, 1e5), tol = 1e-10)$root
    case <- sprintf("ss%02d-%s-%s", i, x$model, if (two) "2t" else "1t")
    common <- list(model = x$model, students_per_school = x$n, share_treated = x$p,
                   r2 = x$r2, icc = x$icc, omega = omega, r2_school_impact = r2t,
                   n_covariates = x$g, n_school_covariates = x$g2, tails = if (two) 2 else 1,
                   effect_size = x$es)
    do.call(add, c(list("formula", case, "schools", ceiling(root), tolerance = 0,
                        note = sprintf("uniroot solution %.6f rounded up", root)), common))
    do.call(add, c(list("formula", case, "schools_powerup",
                        mrss_powerup(x$model, x$es, x$n, x$p, x$r2, x$g, x$g2, x$icc, omega,
                                     r2t, 0.8, 0.05, two),
                        tolerance = 0, note = "PowerUpR mrss iteration, rounded to nearest"),
                   common))
  }
}
# students per school for the random model with J fixed (df does not depend on n)
for (x in list(list(J = 40, es = 0.2, icc = 0.2, omega = 0.2, r2 = 0.3),
               list(J = 25, es = 0.3, icc = 0.1, omega = 0.5, r2 = 0))) {
  df <- df_of("random", x$J, 1, 0, 0)
  M <- bloom_m(df, 0.8, 0.05, TRUE)
  n_root <- uniroot(function(n) M * se_of("random", x$J, n, 0.5, x$r2, x$icc, x$omega) - x$es,
                    c(0.5, 1e6), tol = 1e-10)$root
  add("formula", sprintf("ss-n-random-J%d", x$J), "students_per_school", ceiling(n_root),
      model = "random", schools = x$J, r2 = x$r2, icc = x$icc, omega = x$omega,
      effect_size = x$es, tolerance = 0,
      note = sprintf("uniroot solution %.6f rounded up", n_root))
}

# ------------------------------------------------------------------ pwr (two-sample t test)

for (n in c(20, 64, 100)) {
  for (dd in c(0.3, 0.5)) {
    for (alt in c("two.sided", "greater")) {
      tails <- if (alt == "two.sided") 2 else 1
      pw <- pwr.t.test(n = n, d = dd, sig.level = 0.05, type = "two.sample",
                       alternative = alt)$power
      add("pwr", sprintf("pwr-n%d-d%.1f-%s", n, dd, alt), "power", pw, model = "unblocked",
          schools = 1, students_per_school = 2 * n, tails = tails, effect_size = dd,
          approximation = "noncentral", tolerance = 1e-8,
          note = "pwr.t.test(n per group; both tails); N = 2n students, P = 0.5")
    }
  }
  for (alt in c("two.sided", "greater")) {
    tails <- if (alt == "two.sided") 2 else 1
    d80 <- pwr.t.test(n = n, power = 0.8, sig.level = 0.05, type = "two.sample",
                      alternative = alt)$d
    add("pwr", sprintf("pwr-n%d-%s", n, alt), "mdes", d80, model = "unblocked", schools = 1,
        students_per_school = 2 * n, tails = tails, approximation = "noncentral",
        tolerance = 2e-4, note = "pwr.t.test solved for d at power 0.8 (uniroot tol 1.2e-4)")
  }
}

# ------------------------------------------------------------------ multiple testing

equi <- function(M, rho) {
  S <- matrix(rho, M, M)
  diag(S) <- 1
  S
}
gb <- GenzBretz(maxpts = 2e6, abseps = 1e-6, releps = 0)

# mvtnorm: rectangle probabilities (integer df required by pmvt/qmvt)
mv_cases <- list(
  list(case = "mv-constant-M3", model = "constant", J = 20, n = 50, r2 = 0.5, icc = 0, g = 1,
       M = 3, rho = 0.2, es = 0.125, tails = 2),
  list(case = "mv-random-M4", model = "random", J = 15, n = 40, r2 = 0.3, icc = 0.2,
       omega = 0.3, g = 0, M = 4, rho = 0.5, es = 0.3, tails = 2),
  list(case = "mv-random-M3-1t", model = "random", J = 21, n = 30, r2 = 0, icc = 0.1,
       omega = 0.2, g = 0, M = 3, rho = 0.6, es = 0.2, tails = 1),
  list(case = "mv-constant-M3-negrho", model = "constant", J = 10, n = 20, r2 = 0.2,
       icc = 0.1, g = 0, M = 3, rho = -0.3, es = 0.25, tails = 2)
)
for (x in mv_cases) {
  omega <- if (is.null(x$omega)) 0 else x$omega
  df <- df_of(x$model, x$J, x$n, x$g, 0)
  sse <- se_of(x$model, x$J, x$n, 0.5, x$r2, x$icc, omega)
  delta <- rep(x$es / sse, x$M)
  S <- equi(x$M, x$rho)
  two <- x$tails == 2
  common <- list(model = x$model, schools = x$J, students_per_school = x$n, r2 = x$r2,
                 icc = x$icc, omega = omega, n_covariates = x$g, outcomes = x$M,
                 rho = x$rho, tails = x$tails, effect_size = x$es)
  cb <- if (two) qt(1 - 0.05 / (2 * x$M), df) else qt(1 - 0.05 / x$M, df)
  none_all <- if (two) {
    pmvt(lower = rep(-cb, x$M), upper = rep(cb, x$M), delta = delta, df = df, corr = S,
         type = "shifted", algorithm = gb)
  } else {
    pmvt(lower = rep(-Inf, x$M), upper = rep(cb, x$M), delta = delta, df = df, corr = S,
         type = "shifted", algorithm = gb)
  }
  for (mtp in c("bonferroni", "holm")) {
    do.call(add, c(list("mvtnorm", x$case, "power_minimal", 1 - as.numeric(none_all),
                        ref_mc_se = 2 * attr(none_all, "error") + 1e-6, mtp = mtp, d = 1,
                        note = "1 - P(no statistic beyond the Bonferroni critical value)"),
                   common))
  }
  # Bonferroni complete power: every statistic beyond its critical value
  if (two) {
    signs <- as.matrix(expand.grid(rep(list(c(-1, 1)), x$M)))
    comp <- 0
    err <- 0
    for (r in seq_len(nrow(signs))) {
      lo <- ifelse(signs[r, ] > 0, cb, -Inf)
      hi <- ifelse(signs[r, ] > 0, Inf, -cb)
      v <- pmvt(lower = lo, upper = hi, delta = delta, df = df, corr = S, type = "shifted",
                algorithm = gb)
      comp <- comp + as.numeric(v)
      err <- err + attr(v, "error")
    }
  } else {
    v <- pmvt(lower = rep(cb, x$M), upper = rep(Inf, x$M), delta = delta, df = df, corr = S,
              type = "shifted", algorithm = gb)
    comp <- as.numeric(v)
    err <- attr(v, "error")
  }
  do.call(add, c(list("mvtnorm", x$case, "power_complete", comp, ref_mc_se = 2 * err + 1e-6,
                      mtp = "bonferroni", definition = "complete", d = x$M,
                      note = "sum of orthant probabilities beyond the critical values"),
                 common))
  # Westfall-Young single step: critical value from the null joint law
  q <- qmvt(0.95, tail = if (two) "both.tails" else "lower.tail", df = df, corr = S,
            algorithm = gb)$quantile
  wy_ind <- if (two) {
    pt(q - delta[1], df, lower.tail = FALSE) + pt(-q - delta[1], df)
  } else {
    pt(q - delta[1], df, lower.tail = FALSE)
  }
  wy_none <- if (two) {
    pmvt(lower = rep(-q, x$M), upper = rep(q, x$M), delta = delta, df = df, corr = S,
         type = "shifted", algorithm = gb)
  } else {
    pmvt(lower = rep(-Inf, x$M), upper = rep(q, x$M), delta = delta, df = df, corr = S,
         type = "shifted", algorithm = gb)
  }
  do.call(add, c(list("mvtnorm", x$case, "power_individual", wy_ind, ref_mc_se = 1e-4,
                      mtp = "wy-ss", note = sprintf("qmvt critical value %.6f", q)), common))
  for (mtp in c("wy-ss", "wy-sd")) {
    do.call(add, c(list("mvtnorm", x$case, "power_minimal", 1 - as.numeric(wy_none),
                        ref_mc_se = 2 * attr(wy_none, "error") + 1e-4, mtp = mtp, d = 1,
                        note = "1 - P(no statistic beyond the single-step critical value)"),
                   common))
  }
}

# rsim: PUMP's simulation method in R, with adjusted p-values
rsim <- function(delta, df, S, two, tnum = 100000, B = 50000) {
  M <- length(delta)
  rawt <- rmvt(tnum, sigma = S, df = df) + matrix(delta, tnum, M, byrow = TRUE)
  rawp <- if (two) 2 * pt(-abs(rawt), df) else pt(rawt, df, lower.tail = FALSE)
  stat <- if (two) abs(rawt) else rawt
  adj <- list(
    none = rawp,
    bonferroni = t(apply(rawp, 1, p.adjust, method = "bonferroni")),
    holm = t(apply(rawp, 1, p.adjust, method = "holm")),
    bh = t(apply(rawp, 1, p.adjust, method = "BH"))
  )
  # Westfall-Young from null draws: the null law of the max over every subset of outcomes
  null <- rmvt(B, sigma = S, df = df)
  nstat <- if (two) abs(null) else null
  subsets <- as.matrix(expand.grid(rep(list(c(FALSE, TRUE)), M)))
  code <- function(mask) as.integer(mask %*% 2^(0:(M - 1)))
  smax <- vector("list", 2^M)
  for (r in seq_len(nrow(subsets))) {
    mask <- subsets[r, ]
    if (any(mask)) {
      smax[[code(mask) + 1]] <- sort(apply(nstat[, mask, drop = FALSE], 1, max))
    }
  }
  exceed <- function(sorted, x) 1 - findInterval(x, sorted, left.open = TRUE) / length(sorted)
  full <- rep(TRUE, M)
  adj[["wy-ss"]] <- matrix(exceed(smax[[code(full) + 1]], stat), tnum, M)
  ord <- t(apply(-stat, 1, order))
  sd <- matrix(0, tnum, M)
  remaining <- matrix(TRUE, tnum, M)
  running <- rep(0, tnum)
  for (k in seq_len(M)) {
    idx <- ord[, k]
    x <- stat[cbind(seq_len(tnum), idx)]
    codes <- as.integer(remaining %*% 2^(0:(M - 1)))
    pk <- numeric(tnum)
    for (cc in unique(codes)) {
      sel <- codes == cc
      pk[sel] <- exceed(smax[[cc + 1]], x[sel])
    }
    running <- pmax(running, pk)
    sd[cbind(seq_len(tnum), idx)] <- running
    remaining[cbind(seq_len(tnum), idx)] <- FALSE
  }
  adj[["wy-sd"]] <- sd
  adj
}

rsim_cases <- list(
  list(case = "rsim-porter-M3", model = "constant", J = 20, n = 50, r2 = 0.5, icc = 0, g = 1,
       g2 = 0, M = 3, rho = 0.2, es = rep(0.125, 3), tails = 2),
  list(case = "rsim-trial-M6", model = "constant", J = 28, n = 73.2, r2 = 0.4, icc = 0.1,
       g = 3, g2 = 0, M = 6, rho = 0.3, es = rep(0.12, 6), tails = 2),
  list(case = "rsim-random-M4-1t", model = "random", J = 15, n = 40, r2 = 0.3, icc = 0.2,
       omega = 0.3, g = 0, g2 = 0, M = 4, rho = 0.5, es = rep(0.3, 4), tails = 1),
  list(case = "rsim-zeros-M5", model = "fixed", J = 30, n = 40, r2 = 0.2, icc = 0.05, g = 0,
       g2 = 0, M = 5, rho = 0.4, es = c(0.2, 0.2, 0.2, 0, 0), tails = 2),
  list(case = "rsim-negrho-M3", model = "constant", J = 10, n = 20, r2 = 0.2, icc = 0.1,
       g = 0, g2 = 0, M = 3, rho = -0.3, es = c(0.25, 0.2, 0.3), tails = 2)
)
for (x in rsim_cases) {
  omega <- if (is.null(x$omega)) 0 else x$omega
  df <- df_of(x$model, x$J, x$n, x$g, x$g2)
  sse <- se_of(x$model, x$J, x$n, 0.5, x$r2, x$icc, omega)
  delta <- x$es / sse
  two <- x$tails == 2
  tnum <- 100000
  adj <- rsim(delta, df, equi(x$M, x$rho), two, tnum = tnum)
  nz <- x$es > 0
  common <- list(model = x$model, schools = x$J, students_per_school = x$n, r2 = x$r2,
                 icc = x$icc, omega = omega, n_covariates = x$g, outcomes = x$M, rho = x$rho,
                 tails = x$tails, effect_size = x$es)
  for (mtp in names(adj)) {
    rej <- adj[[mtp]] <= 0.05
    se <- function(p) sqrt(p * (1 - p) / tnum)
    p1 <- mean(rej[, 1])
    do.call(add, c(list("rsim", x$case, "power_individual", p1, ref_mc_se = se(p1), mtp = mtp,
                        note = "outcome 1"), common))
    pm <- mean(rej[, nz])
    # a mean over correlated outcomes varies at most as much as one outcome does
    do.call(add, c(list("rsim", x$case, "power_individual_mean", pm, ref_mc_se = se(pm),
                        mtp = mtp), common))
    count <- rowSums(rej[, nz, drop = FALSE])
    for (dd in seq_len(sum(nz))) {
      v <- mean(count >= dd)
      q <- if (dd == sum(nz) && all(nz)) "power_complete" else "power_minimal"
      do.call(add, c(list("rsim", x$case, q, v, ref_mc_se = se(v), mtp = mtp,
                          definition = if (q == "power_complete") "complete" else "minimal",
                          d = dd), common))
    }
  }
  # MDES under Holm, BH and WY-SS by bisection on common draws (50,000)
  if (x$case %in% c("rsim-porter-M3", "rsim-trial-M6")) {
    S <- equi(x$M, x$rho)
    tn <- 50000
    base <- rmvt(tn, sigma = S, df = df)
    null <- rmvt(50000, sigma = S, df = df)
    smax <- sort(apply(abs(null), 1, max))
    searches <- list(c("holm", "individual"), c("holm", "minimal"), c("holm", "complete"),
                     c("bh", "individual"), c("wy-ss", "individual"))
    for (sch in searches) {
      mtp <- sch[1]
      def <- sch[2]
      pow_at <- function(k) {
        t <- base + k
        p <- 2 * pt(-abs(t), df)
        a <- switch(mtp,
          holm = t(apply(p, 1, p.adjust, method = "holm")),
          bh = t(apply(p, 1, p.adjust, method = "BH")),
          "wy-ss" = matrix(1 - findInterval(abs(t), smax, left.open = TRUE) / length(smax),
                           tn, x$M))
        rej <- a <= 0.05
        switch(def, individual = mean(rej), minimal = mean(rowSums(rej) >= 1),
               complete = mean(rowSums(rej) == x$M))
      }
      lo <- 1; hi <- 6
      while (hi - lo > 1e-3) {
        mid <- (lo + hi) / 2
        if (pow_at(mid) >= 0.8) hi <- mid else lo <- mid
      }
      do.call(add, c(list("rsim", x$case, "multiplier", hi, ref_mc_se = 0.006, mtp = mtp,
                          definition = def, d = 1, target_power = 0.8,
                          note = "bisection on 50,000 common draws"), common))
    }
  }
}

# ------------------------------------------------------------------ published values

# Bloom's multiplier (alpha = .05, power = .80) for df = 10, 20, 40, 100, large; the
# random-impacts model with ICC = 0 gives df = J - 1.
bloom <- data.frame(df = c(10, 20, 40, 100, 100000),
                    two = c(3.107, 2.946, 2.872, 2.829, 2.802),
                    one = c(2.692, 2.585, 2.535, 2.505, 2.486))
for (r in seq_len(nrow(bloom))) {
  for (tails in c(2, 1)) {
    add("published", sprintf("bloom-df%d-%dt", bloom$df[r], tails), "multiplier",
        if (tails == 2) bloom$two[r] else bloom$one[r], model = "random",
        schools = bloom$df[r] + 1, students_per_school = 50, tails = tails,
        tolerance = 0.0005 + 1e-9, note = "Bloom (1995) multiplier table, 3 decimals")
  }
}
# WWC notes, worked example: 20 schools x 60, P = .5, R2 = .5 -> MDES about 0.114 SD
add("published", "wwc-example-continuous", "mdes", 0.1145, schools = 20,
    students_per_school = 60, r2 = 0.5, tolerance = 0.0006,
    note = "WWC power notes worked example: 'MDES about 0.114' (0.1145 +/- rounding)")
add("published", "wwc-example-binary", "mde_pp", 6.6, schools = 20, students_per_school = 60,
    r2 = 0.2, control_rate = 0.3, tolerance = 0.05 + 1e-9,
    note = "WWC power notes: 30% control rate, R2 = .2 -> about 6.6 percentage points")
add("published", "wwc-example-bonferroni6", "multiplier", 3.48, schools = 20,
    students_per_school = 60, r2 = 0.5, outcomes = 6, mtp = "bonferroni",
    tolerance = 0.005 + 1e-9, note = "WWC power notes: Bonferroni over 6 outcomes, M 2.80 -> 3.48")
add("published", "wwc-example-none6", "multiplier", 2.80, schools = 20,
    students_per_school = 60, r2 = 0.5, outcomes = 6, mtp = "none",
    tolerance = 0.005 + 1e-9, note = "WWC power notes: unadjusted M = 2.80")

# PowerUpR "Cross-checks" vignette (2018): printed MDES (3 decimals), df, standardized SE,
# and mrss answers.
xc <- list(
  list(case = "powerup-ira1r1", model = "unblocked", J = 1, n = 250, mdes = 0.356, df = 248,
       se = 0.126, ss = NA),
  list(case = "powerup-bira2c1", model = "constant", J = 20, n = 15, mdes = 0.325, df = 279,
       se = 0.115, ss = 20),
  list(case = "powerup-bira2f1", model = "fixed", J = 20, n = 15, mdes = 0.325, df = 260,
       se = 0.115, ss = 20),
  list(case = "powerup-bira2r1", model = "random", J = 20, n = 15, mdes = 0.366, df = 19,
       se = 0.124, ss = 20, icc = 0.17, omega = 0.5)
)
for (x in xc) {
  icc <- if (is.null(x$icc)) 0 else x$icc
  omega <- if (is.null(x$omega)) 0 else x$omega
  common <- list(model = x$model, schools = x$J, students_per_school = x$n, icc = icc,
                 omega = omega)
  src <- "PowerUpR Cross-checks vignette, printed output"
  do.call(add, c(list("published", x$case, "mdes", x$mdes, tolerance = 0.0005 + 1e-9,
                      note = src), common))
  do.call(add, c(list("published", x$case, "df", x$df, tolerance = 0, note = src), common))
  do.call(add, c(list("published", x$case, "std_error", x$se, tolerance = 0.0005 + 1e-9,
                      note = src), common))
  do.call(add, c(list("published", x$case, "power", 0.80, tolerance = 0.005 + 1e-9,
                      effect_size = x$mdes, approximation = "noncentral",
                      note = paste(src, "(power printed as 80%)")), common))
  if (!is.na(x$ss)) {
    do.call(add, c(list("published", x$case, "schools_powerup", x$ss, tolerance = 0,
                        effect_size = x$mdes, note = paste(src, "(mrss, J)")), common))
  }
}

# PUMP, recorded in tests/testthat/test-designs_two.R (pump_power, tnum = 100000):
# M = 3, MDES = .125, n = 50, J = 60, numCovar.1 = 1, R2.1 = .1, ICC.2 = .05, rho = .2,
# Holm, power of outcome 1. PUMP's d2.1_m2fr df is J - numCovar.1 - 1, so g2 = 1 here.
pump2 <- list(
  list(case = "pump-m2fc-holm-1t", model = "constant", tails = 1, omega = 0, g2 = 0,
       value = 0.97633),
  list(case = "pump-m2fc-holm-2t", model = "constant", tails = 2, omega = 0, g2 = 0,
       value = 0.95162),
  list(case = "pump-m2ff-holm-1t", model = "fixed", tails = 1, omega = 0, g2 = 0,
       value = 0.97644),
  list(case = "pump-m2fr-holm-1t", model = "random", tails = 1, omega = 0, g2 = 1,
       value = 0.97152),
  list(case = "pump-m2fr-holm-2t", model = "random", tails = 2, omega = 0.1, g2 = 1,
       value = 0.92552)
)
for (x in pump2) {
  add("published", x$case, "power_individual", x$value, model = x$model, schools = 60,
      students_per_school = 50, r2 = 0.1, icc = 0.05, omega = x$omega, n_covariates = 1,
      n_school_covariates = x$g2, tails = x$tails, outcomes = 3, rho = 0.2, mtp = "holm",
      effect_size = 0.125, ref_mc_se = sqrt(x$value * (1 - x$value) / 1e5),
      tolerance = 0.00005, note = "PUMP test-designs_two.R recorded pump_power output")
}

# Porter (2018), Figure 1, as transcribed in PUMP's test-porter-benchmark.R: d2.1_m2fc,
# n = 50, J = 20, MDES = .125, R2.1 = .5, numCovar.1 = 1, individual power of outcome 1.
# Two-digit values read from a figure; PUMP's own test checks them with 1,000 draws.
porter <- list(
  list(M = 3, rho = 0.2, zero = 0, v = c(0.65, 0.72, 0.77, 0.68, 0.75)),
  list(M = 3, rho = 0.8, zero = 0, v = c(0.65, 0.71, 0.76, 0.71, 0.76)),
  list(M = 9, rho = 0.2, zero = 3, v = c(0.48, 0.56, 0.69, 0.52, 0.55)),
  list(M = 12, rho = 0.8, zero = 0, v = c(0.48, 0.57, 0.72, 0.60, 0.68))
)
mtps <- c("bonferroni", "holm", "bh", "wy-ss", "wy-sd")
for (x in porter) {
  es <- c(rep(0.125, x$M - x$zero), rep(0, x$zero))
  for (k in seq_along(mtps)) {
    add("published", sprintf("porter-M%d-rho%.1f", x$M, x$rho), "power_individual", x$v[k],
        schools = 20, students_per_school = 50, r2 = 0.5, n_covariates = 1, outcomes = x$M,
        rho = x$rho, mtp = mtps[k], effect_size = es, tolerance = 0.035,
        note = "Porter (2018) Figure 1 via PUMP test-porter-benchmark.R; read from a figure")
  }
}

# PUMP vignettes. Three-level designs mapped to the random model with ICC = 0 (see top).
pump_mapped <- function(se, df, g2 = 0) {
  J <- df + 1 + g2
  list(J = J, n = 1 / (0.25 * J * se^2))
}
vig <- function(case, se, df, M, es, rho, values, tnum, digits, note, r2 = NULL) {
  mp <- pump_mapped(max(se), df)
  r2v <- if (length(se) > 1) 1 - (se / max(se))^2 else 0
  for (nm in names(values)) {
    v <- values[[nm]]
    if (is.na(v)) next
    parts <- strsplit(nm, ":")[[1]]
    q <- parts[1]
    mtp <- parts[2]
    dd <- if (length(parts) > 2) as.integer(parts[3]) else 1
    def <- if (q == "power_minimal") "minimal" else if (q == "power_complete") "complete" else "individual"
    add("published", case, q, v, model = "random", schools = mp$J, students_per_school = mp$n,
        r2 = r2v, outcomes = M, rho = rho, mtp = mtp, definition = def, d = dd,
        effect_size = es, ref_mc_se = sqrt(v * (1 - v) / tnum),
        tolerance = 0.5 * 10^(-digits) + 1e-9, note = note)
  }
}
# "Demo and discussion of the pump_sample method": d3.1_m3rr2rr, printed SE and df.
# PUMP reports complete power from unadjusted p-values: it is compared with the
# unadjusted ("none") complete power here.
vig("pump-sample-demo-1", 0.0542586, 14, 3, 0.125, 0.5,
    list("power_individual_mean:none" = 0.5638833, "power_individual_mean:holm" = 0.4180500,
         "power_minimal:holm:1" = 0.58365, "power_minimal:holm:2" = 0.39567,
         "power_complete:none:3" = 0.31228), 1e5, 5,
    "PUMP pump_sample vignette, d3.1_m3rr2rr pump_power (tnum = 100000)")
vig("pump-sample-demo-2", 0.0525357, 15, 3, 0.125, 0.5,
    list("power_individual_mean:none" = 0.5964167, "power_individual_mean:holm" = 0.4578067,
         "power_minimal:holm:1" = 0.62488, "power_minimal:holm:2" = 0.43872,
         "power_complete:none:3" = 0.34743), 1e5, 5,
    "PUMP pump_sample vignette, update(K, type = 'power', tnum = 100000)")
vig("pump-sample-demo-3", 0.1360956, 17, 3, 0.25, 0.5,
    list("power_individual_mean:none" = 0.3995667, "power_individual_mean:holm" = 0.2614,
         "power_minimal:holm:1" = 0.4085, "power_minimal:holm:2" = 0.2336,
         "power_complete:none:3" = 0.1676), 1e4, 4,
    "PUMP pump_sample vignette, d3.3_m3rc2rc pump_power (tnum = 10000)")
vig("pump-sample-demo-4", 0.1371496, 17, 3, 0.25, 0.5,
    list("power_individual_mean:none" = 0.3943, "power_individual_mean:holm" = 0.2561333,
         "power_minimal:holm:1" = 0.4006, "power_minimal:holm:2" = 0.2292,
         "power_complete:none:3" = 0.1646), 1e4, 4,
    "PUMP pump_sample vignette, d3.3_m3rc2rc with nbar = 10 (tnum = 10000)")
# "Demonstration of the PUMP package" (Diplomas Now): d3.2_m3fc2rc, J = 3 schools per
# block, nbar = 258, numCovar.2 = 3, so df = K(J - 1) - 3; SE from PUMP's calc_SE.
se_d32 <- function(K, icc2, icc3, r21, r22, J = 3, n = 258) {
  sqrt(icc2 * (1 - r22) / (0.25 * J * K) + (1 - icc2 - icc3) * (1 - r21) / (0.25 * J * K * n))
}
vig("pump-demo-p-check", se_d32(16, 0.05, 0.40, 0.1, 0.7), 29, 5, 0.10, 0.4,
    list("power_individual_mean:none" = 0.73, "power_individual_mean:holm" = 0.57,
         "power_minimal:holm:1" = 0.84, "power_minimal:holm:2" = 0.69,
         "power_minimal:holm:3" = 0.56, "power_minimal:holm:4" = 0.44,
         "power_complete:none:5" = 0.37), 2e4, 2,
    "PUMP vignette p_check: update(smp, type = 'power', tnum = 20000), 2 decimals")
vig("pump-demo-p-b", se_d32(16, 0.20, 0.25, 0.1, 0.7), 29, 5, 0.10, 0.4,
    list("power_individual_mean:none" = 0.262, "power_individual_mean:holm" = 0.110,
         "power_minimal:holm:1" = 0.294, "power_minimal:holm:2" = 0.133,
         "power_minimal:holm:3" = 0.067, "power_minimal:holm:4" = 0.037,
         "power_complete:none:5" = 0.028), 1e4, 3,
    "PUMP vignette p_b: ICC.2 = .20, ICC.3 = .25 (tnum = 10000)")
se_pd <- se_d32(16, 0.05, 0.40, c(0.1, 0.3, 0.1, 0.2, 0.2), c(0.4, 0.8, 0.3, 0.2, 0.2))
vig("pump-demo-p-d", se_pd, 29, 5, 0.10, 0.4,
    list("power_minimal:holm:1" = 0.754, "power_minimal:holm:2" = 0.413,
         "power_minimal:holm:3" = 0.238, "power_minimal:holm:4" = 0.138,
         "power_complete:none:5" = 0.100, "power_individual_mean:none" = 0.497,
         "power_individual_mean:holm" = 0.324), 1e4, 3,
    "PUMP vignette p_d: R2.1 and R2.2 vary by outcome (tnum = 10000)")
# MDES searches of the same vignette (K = 21): PUMP stops within 0.01 of the target power
mp <- pump_mapped(se_d32(21, 0.05, 0.40, 0.1, 0.7), 39)
add("published", "pump-demo-mdes-holm-indiv", "mdes", 0.105, model = "random", schools = mp$J,
    students_per_school = mp$n, outcomes = 5, rho = 0.4, mtp = "holm", tolerance = 0.004,
    note = "PUMP vignette pump_mdes, D1indiv, Holm: 0.105 (search tolerance 0.01 in power)")
add("published", "pump-demo-mdes-holm-min1", "mdes", 0.08048574, model = "random",
    schools = mp$J, students_per_school = mp$n, outcomes = 5, rho = 0.4, mtp = "holm",
    definition = "minimal", d = 1, tolerance = 0.004,
    note = "PUMP vignette update(m, power.definition = 'min1'): 0.0805 at power 0.784")

out <- do.call(rbind, rows)
con <- file(out_path, "w")
writeLines(c(
  "# Reference values for tests/test_power.py, written by tests/reference/make_power_reference.R",
  sprintf("# %s; mvtnorm %s; pwr %s; seed 20240611", R.version.string,
          packageVersion("mvtnorm"), packageVersion("pwr")),
  "# source: formula | pwr | mvtnorm | rsim | published (see the script for each source)"
), con)
write.csv(out, con, row.names = FALSE)
close(con)
cat(sprintf("wrote %d rows to %s\n", nrow(out), out_path))
