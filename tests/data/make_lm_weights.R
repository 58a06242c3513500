# Makes lm_weights.json: stats::lm references with prior weights (R's
# weights=, i.e. sample_weight=) for tests/test_weights_lm.py
# (R 4.2.2, sandwich, lmtest). Run from tests/data:  Rscript make_lm_weights.R
# Weights: w = 1 + (Days %% 3), as in the weighted lmer references
# (sleepstudy_lmer_weights*.json); the extra covariate x is lm_extra.json's.
library(jsonlite)
library(sandwich)
library(lmtest)
d <- read.csv("../../skmixed/datasets/data/sleepstudy.csv")
d$Subject <- factor(d$Subject, levels = as.character(sort(as.numeric(unique(d$Subject)))))
d$x <- fromJSON("lm_extra.json")$x
d$w <- 1 + (d$Days %% 3)

lm_case <- function(m) {
  s <- summary(m)
  cf <- coef(m)
  full <- matrix(NA, length(cf), 4, dimnames = list(names(cf), NULL))
  full[!is.na(cf), ] <- coef(s)
  V <- matrix(NA, length(cf), length(cf))
  V[!is.na(cf), !is.na(cf)] <- vcov(m)
  ci <- confint(m)
  list(
    coef_names = names(cf),
    estimate = unname(full[, 1]), std_error = unname(full[, 2]),
    t_value = unname(full[, 3]), p_value = unname(full[, 4]),
    sigma = s$sigma, df_residual = m$df.residual, rank = m$rank,
    nobs = nobs(m),
    r_squared = s$r.squared, adj_r_squared = s$adj.r.squared,
    fstatistic = if (is.null(s$fstatistic)) NULL else unname(s$fstatistic),
    f_pvalue = if (is.null(s$fstatistic)) NULL else
      unname(pf(s$fstatistic[1], s$fstatistic[2], s$fstatistic[3], lower.tail = FALSE)),
    logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
    vcov = V, confint_lower = unname(ci[, 1]), confint_upper = unname(ci[, 2]),
    fitted = unname(fitted(m)), residuals = unname(residuals(m)),
    weighted_residual_quantiles = unname(quantile(s$residuals)),
    summary_text = capture.output(print(s))
  )
}

cases <- list()
cases$days <- lm_case(lm(Reaction ~ Days, d, weights = w))
cases$days_x <- lm_case(lm(Reaction ~ Days + x, d, weights = w))
cases$no_intercept <- lm_case(lm(Reaction ~ 0 + Days, d, weights = w))
cases$days_subject <- lm_case(lm(Reaction ~ Days + Subject, d, weights = w))
cases$days_x_subject <- lm_case(lm(Reaction ~ Days * Subject, d, weights = w))
cases$days_cov_subject <- lm_case(lm(Reaction ~ Days + x + Subject, d, weights = w))
# Zero weights: lm.wfit fits without those rows (nobs, df and logLik do not
# count them) but still gives them fitted values and residuals.
dz <- d
dz$w[c(1, 2, 3, 50)] <- 0
cases$zero_weights <- lm_case(lm(Reaction ~ Days, dz, weights = w))
cases$zero_weights_subject <- lm_case(lm(Reaction ~ Days + Subject, dz, weights = w))

m <- lm(Reaction ~ Days + x, d, weights = w)
V <- vcovCL(m, cluster = ~Subject)  # type "HC1", cadjust = TRUE: CR1
ct <- coeftest(m, vcov. = V)
wt <- waldtest(m, vcov = V, test = "F")
cases$cluster <- list(
  coef_names = rownames(ct), estimate = unname(ct[, 1]), std_error = unname(ct[, 2]),
  t_value = unname(ct[, 3]), p_value = unname(ct[, 4]),
  vcov = unname(V), fvalue = wt$F[2], f_pvalue = wt[2, "Pr(>F)"],
  confint = unname(coefci(m, vcov. = V))
)
write_json(list(weights = d$w, zero_weights = dz$w, cases = cases),
           "lm_weights.json", digits = NA, auto_unbox = TRUE, na = "null")
