"""Presentation: tables, reports, privacy protection of published figures."""
