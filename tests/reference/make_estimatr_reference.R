# Reference values from R's estimatr for cis_eval's impact estimators.
#
# Reads the designs written by make_reference_data.py (tests/reference/data/*.csv) and
# writes tests/reference/estimatr_reference.csv: one row per design, outcome and
# estimator with the estimate, standard error and degrees of freedom of the treatment
# term. The missing-value indicators are built here, independently of cis_eval: within
# each outcome's analytic sample, a covariate with missing values is filled with its
# observed mean and joined by a 0/1 indicator. Lin's (2013) interacted models interact the
# covariates, not the indicators (cis_eval's documented choice).
#
# Where estimatr's HC2 is NaN (a student with leverage 1: a missing-value indicator that
# flags only that student), the row is refitted without the students whose leverage is 1
# (found with lm's hat values) and marked "refit"; cis_eval must give that value, since a
# student fitted exactly with no influence on the estimate adds nothing to HC2.
#
# Needs R with estimatr (Debian: apt-get install r-base-core r-cran-estimatr).
# Run from the repository root: Rscript tests/reference/make_estimatr_reference.R

suppressPackageStartupMessages(library(estimatr))

here <- "tests/reference"
designs <- c("shipped", "small_schools", "unbalanced")
outcomes <- c("chronic_absence", "attendance_rate", "core_course_failure",
              "core_credits", "core_gpa", "suspensions")
prior <- c(chronic_absence = "prior_chronic_absence",
           attendance_rate = "prior_attendance_rate",
           core_course_failure = "prior_core_failures",
           core_credits = "prior_core_gpa",
           core_gpa = "prior_core_gpa",
           suspensions = "prior_suspensions")
demographics <- c("female", "frpl", "ell", "special_education", "overage")

fill_covariates <- function(d, covs) {
  names_out <- character(0)
  base_out <- character(0)
  for (v in covs) {
    x <- d[[v]]
    if (all(is.na(x))) next
    if (any(is.na(x))) {
      d[[paste0(v, "_missing")]] <- as.numeric(is.na(x))
      x[is.na(x)] <- mean(x, na.rm = TRUE)
      d[[v]] <- x
      names_out <- c(names_out, v, paste0(v, "_missing"))
    } else {
      names_out <- c(names_out, v)
    }
    base_out <- c(base_out, v)
  }
  list(data = d, covs = names_out, base = base_out)
}

# Centred covariates interacted with assignment (Lin 2013), indicators left out.
add_interactions <- function(d, base) {
  inter <- character(0)
  for (v in base) {
    nm <- paste0("zx_", v)
    d[[nm]] <- d$treatment * (d[[v]] - mean(d[[v]]))
    inter <- c(inter, nm)
  }
  list(data = d, inter = inter)
}

# Fit; when the treatment SE is NaN, refit without the students of leverage 1.
fit_or_refit <- function(fun, formula, data, hat_formula, ...) {
  fit <- fun(formula, data = data, ...)
  name <- if ("received" %in% names(coef(fit))) "received" else "treatment"
  if (!is.nan(fit$std.error[name]) && !is.na(fit$std.error[name])) {
    return(list(fit = fit, note = ""))
  }
  h <- hatvalues(lm(hat_formula, data = data))
  keep <- h < 1 - 1e-8
  list(fit = fun(formula, data = data[keep, ], ...), note = "refit")
}

both_arms <- function(d) {
  arms <- tapply(d$treatment, d$school_id, function(z) length(unique(z)))
  d[d$school_id %in% names(arms)[arms == 2], ]
}

term <- function(fit, name) {
  c(estimate = unname(coef(fit)[name]), std_error = unname(fit$std.error[name]),
    df = unname(fit$df[name]), n = fit$nobs)
}

rows <- list()
add <- function(design, outcome, estimator, values, note = "") {
  rows[[length(rows) + 1]] <<- data.frame(
    design = design, outcome = outcome, estimator = estimator,
    estimate = values[["estimate"]], std_error = values[["std_error"]],
    df = values[["df"]], n = values[["n"]], note = note, stringsAsFactors = FALSE)
}

for (design in designs) {
  raw <- read.csv(file.path(here, "data", paste0(design, ".csv")), stringsAsFactors = FALSE)
  raw$school_id <- factor(raw$school_id)
  for (y in outcomes) {
    covs <- unique(c(prior[[y]], demographics))
    d0 <- raw[!is.na(raw[[y]]), ]
    d0$school_id <- droplevels(d0$school_id)
    fc <- fill_covariates(d0, covs)
    d <- fc$data
    rhs <- paste(c("treatment", fc$covs), collapse = " + ")
    f <- as.formula(paste(y, "~", rhs))
    hat_f <- as.formula(paste(y, "~", rhs, "+ school_id"))
    # school fixed effects, heteroskedasticity-robust and classical
    for (se in c("HC2", "HC1", "HC0", "classical")) {
      r <- fit_or_refit(lm_robust, f, d, hat_f, fixed_effects = ~ school_id, se_type = se)
      add(design, y, paste0("fixed_effects/", se), term(r$fit, "treatment"), r$note)
    }
    # cluster-robust by school ("stata" is estimatr's CR1)
    for (se in c("CR2", "stata", "CR0")) {
      fit <- lm_robust(f, data = d, fixed_effects = ~ school_id, clusters = school_id,
                       se_type = se)
      name <- if (se == "stata") "CR1" else se
      add(design, y, paste0("fixed_effects/", name), term(fit, "treatment"))
    }
    # no covariates
    fit <- lm_robust(as.formula(paste(y, "~ treatment")), data = d,
                     fixed_effects = ~ school_id, se_type = "HC2")
    add(design, y, "fixed_effects_nocov/HC2", term(fit, "treatment"))
    # Lin (2013) with school fixed effects
    li <- add_interactions(d, fc$base)
    rhs_lin <- paste(c("treatment", fc$covs, li$inter), collapse = " + ")
    r <- fit_or_refit(lm_robust, as.formula(paste(y, "~", rhs_lin)), li$data,
                      as.formula(paste(y, "~", rhs_lin, "+ school_id")),
                      fixed_effects = ~ school_id, se_type = "HC2")
    add(design, y, "fixed_effects_lin/HC2", term(r$fit, "treatment"), r$note)

    # person- and school-weighted estimands: schools with both arms only
    b0 <- both_arms(d0)
    b0$school_id <- droplevels(b0$school_id)
    fb <- fill_covariates(b0, covs)
    b <- fb$data
    dim <- difference_in_means(as.formula(paste(y, "~ treatment")), blocks = school_id,
                               data = b)
    add(design, y, "person_weighted_nocov/HC2",
        c(estimate = unname(dim$coefficients), std_error = unname(dim$std.error),
          df = unname(dim$df), n = dim$nobs))
    if (identical(fb$covs, fb$base)) {
      # no missing-value indicators: estimatr's own lm_lin applies as it is
      lin <- lm_lin(as.formula(paste(y, "~ treatment")),
                    covariates = as.formula(paste("~", paste(c(fb$covs, "school_id"),
                                                             collapse = " + "))),
                    data = b, se_type = "HC2")
      add(design, y, "person_weighted_lin/HC2", term(lin, "treatment"), "lm_lin")
    }
    # assignment interacted with centred school indicators (person or school weights)
    dummies <- model.matrix(~ school_id, data = b)[, -1, drop = FALSE]
    g <- nlevels(b$school_id)
    lb <- add_interactions(b, fb$base)
    for (w in c("person_weighted", "school_weighted")) {
      centre <- if (w == "person_weighted") colMeans(dummies) else rep(1 / g, ncol(dummies))
      dc <- sweep(dummies, 2, centre)
      colnames(dc) <- paste0("d", seq_len(ncol(dc)))
      zc <- b$treatment * dc
      colnames(zc) <- paste0("zd", seq_len(ncol(dc)))
      bw <- cbind(lb$data, dc, zc)
      for (lin_flag in c(FALSE, TRUE)) {
        terms <- c("treatment", fb$covs, if (lin_flag) lb$inter, colnames(dc), colnames(zc))
        fw <- as.formula(paste(y, "~", paste(terms, collapse = " + ")))
        r <- fit_or_refit(lm_robust, fw, bw, fw, se_type = "HC2")
        est <- paste0(w, if (lin_flag) "_lin" else "", "/HC2")
        if (!(lin_flag && w == "person_weighted" && identical(fb$covs, fb$base))) {
          add(design, y, est, term(r$fit, "treatment"), r$note)
        } else {
          add(design, y, paste0(w, "_lin_manual/HC2"), term(r$fit, "treatment"), r$note)
        }
      }
    }

    # complier average causal effect: assignment instruments receipt
    fiv <- as.formula(paste(y, "~", paste(c("received", fc$covs), collapse = " + "), "|",
                            paste(c("treatment", fc$covs), collapse = " + ")))
    for (se in c("HC2", "HC1")) {
      r <- fit_or_refit(iv_robust, fiv, d, hat_f, fixed_effects = ~ school_id, se_type = se)
      add(design, y, paste0("cace/", se), term(r$fit, "received"), r$note)
    }
    r <- fit_or_refit(lm_robust, as.formula(paste("received ~", rhs)), d,
                      as.formula(paste("received ~", rhs, "+ school_id")),
                      fixed_effects = ~ school_id, se_type = "HC2")
    add(design, y, "first_stage/HC2", term(r$fit, "treatment"), r$note)
  }
}

out <- do.call(rbind, rows)
target <- file.path(here, "estimatr_reference.csv")
tmp <- paste0(target, ".tmp")
con <- file(tmp, "w")
writeLines(c(
  "# Reference values from R's estimatr; made by tests/reference/make_estimatr_reference.R",
  paste0("# ", R.version.string, "; estimatr ", as.character(packageVersion("estimatr"))),
  "# Binary outcomes are 0/1 here (cis_eval reports them x 100)."), con)
write.csv(format(out, digits = 17), con, row.names = FALSE, quote = FALSE)
close(con)
invisible(file.rename(tmp, target))
cat("wrote", target, nrow(out), "rows\n")
