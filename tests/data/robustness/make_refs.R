# Fit the robustness data sets with lme4 and write reference JSON (run by hand:
# Rscript make_refs.R). Tests read only the JSON and CSV files.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
fit_case <- function(name, formula, reml = TRUE) {
  d <- read.csv(paste0(name, ".csv"))
  d$g <- factor(d$g)
  msgs <- character(0)
  m <- withCallingHandlers(
    lmer(as.formula(formula), data = d, REML = reml),
    warning = function(w) {msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning")},
    message = function(w) {msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleMessage")})
  vc <- as.data.frame(VarCorr(m), order = "cov.last")
  out <- list(
    case = name, formula = formula, REML = reml,
    lme4 = as.character(packageVersion("lme4")),
    criterion = if (reml) REMLcrit(m) else deviance(m),
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    theta = unname(getME(m, "theta")),
    sigma = sigma(m),
    varcorr = vc,
    is_singular = isSingular(m),
    messages = msgs)
  write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
        paste0(name, ".json"))
}
fit_case("corr_slopes", "y ~ x + (x | g)")
fit_case("zero_slope_var", "y ~ x + (x | g)")
fit_case("pairs_10k", "y ~ x + (1 | g)")
fit_case("one_big_group", "y ~ x + (1 | g)")
