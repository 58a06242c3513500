# Makes glmer_extra.json: what a fitted glmer reports, for the GLMM
# summary/inference/reporting tests (tests/test_glmm_report.py):
#   - print(summary(m)) line by line (options(width = 200), so that lme4 does
#     not wrap the title), with vcov(m) (lme4's finite-difference Hessian) and
#     with use.hessian = FALSE (R_X);
#   - performance::r2_nakagawa and performance::icc, and the variance parts of
#     insight::get_variance (binomial: pi^2/3, 1, pi^2/6 by link; poisson:
#     log1p(1 / mu) with mu = exp(intercept of the refitted null model));
#   - confint(m, method = "Wald") and, where lme4 gives it, "profile";
#   - anova(m0, m1) likelihood-ratio tests between nested glmers;
#   - sjPlot-style odds ratios / incidence rate ratios: exp(estimate) and
#     exp(Wald CI), z-test p-values (sjPlot is not installed here; these are
#     the numbers its tab_model prints for a glmer).
# R 4.2.2, lme4 1.1-31, performance 0.10.2, insight 0.19.0 (see "software").
# Run from tests/data:  Rscript make_glmer_extra.R
# Numbers are exact doubles (jsonlite digits = NA).
suppressMessages({
  library(jsonlite)
  library(lme4)
  library(performance)
  library(insight)
})
options(width = 200)

data_dir <- "../../skmixed/datasets/data"
num_levels <- function(x) factor(x, levels = as.character(sort(as.numeric(unique(x)))))
read_factors <- function(file, factors) {
  d <- read.csv(file.path(data_dir, file), colClasses = setNames(rep("character", length(factors)), factors))
  for (f in factors) d[[f]] <- num_levels(d[[f]])
  d
}
cbpp <- read_factors("cbpp.csv", c("herd", "period"))
grouse <- read_factors("grouseticks.csv", c("INDEX", "BROOD", "YEAR", "LOCATION"))
sleep <- read_factors("sleepstudy.csv", "Subject")
sleep$slow <- as.integer(sleep$Reaction > 300)

# Warnings of an expression, kept (not printed) so they go into the JSON.
with_warnings <- function(expr) {
  warns <- character(0)
  value <- withCallingHandlers(expr, warning = function(w) {
    warns <<- c(warns, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  list(value = value, warnings = warns)
}

matrix_json <- function(m) list(names = rownames(m), matrix = unname(as.matrix(m)))

fixed_table <- function(m) {
  cf <- coef(summary(m))
  data.frame(term = rownames(cf), estimate = cf[, 1], std_error = cf[, 2],
             z_value = cf[, 3], p_value = cf[, 4], row.names = NULL)
}

ci_table <- function(ci) {
  data.frame(term = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}

nakagawa <- function(m) {
  r2 <- with_warnings(r2_nakagawa(m))
  ic <- with_warnings(icc(m))
  gv <- with_warnings(get_variance(m))
  v <- gv$value
  list(
    r2_marginal = unname(r2$value$R2_marginal),
    r2_conditional = unname(r2$value$R2_conditional),
    icc_adjusted = unname(ic$value$ICC_adjusted),
    icc_conditional = unname(ic$value$ICC_conditional),
    var_fixed = v$var.fixed, var_random = v$var.random,
    var_residual = v$var.residual, var_distribution = v$var.distribution,
    var_intercept = as.list(v$var.intercept),
    warnings = unique(c(r2$warnings, ic$warnings, gv$warnings))
  )
}

# sjPlot's tab_model for a glmer: exp() of the estimates and of the Wald
# interval (normal quantiles) for the logit and log links, the z-test p.
tab_model_numbers <- function(m, link) {
  ft <- fixed_table(m)
  q <- qnorm(0.975)
  tr <- if (link %in% c("logit", "log")) exp else identity
  v <- get_variance(m)
  list(
    label = switch(link, logit = "Odds Ratios", log = "Incidence Rate Ratios", "Estimates"),
    term = ft$term,
    estimate = tr(ft$estimate),
    ci_lower = tr(ft$estimate - q * ft$std_error),
    ci_upper = tr(ft$estimate + q * ft$std_error),
    p_value = ft$p_value,
    sigma2 = v$var.residual,
    tau00 = as.list(v$var.intercept)
  )
}

glmer_case <- function(m, link, profile = TRUE) {
  s <- summary(m)
  out <- list(
    formula = deparse(formula(m)),
    family = family(m)$family, link = link, nAGQ = m@devcomp$dims[["nAGQ"]],
    fixef = as.list(fixef(m)), theta = unname(getME(m, "theta")),
    minus_2_logLik = -2 * as.numeric(logLik(m)),
    summary_text = capture.output(print(s)),
    summary_text_rx = capture.output(print(summary(m, use.hessian = FALSE))),
    fixed_effects = fixed_table(m),
    fixed_effects_rx = {
      V <- as.matrix(vcov(m, use.hessian = FALSE))
      se <- sqrt(diag(V)); b <- fixef(m)
      data.frame(term = names(b), estimate = unname(b), std_error = unname(se),
                 z_value = unname(b / se), p_value = unname(2 * pnorm(-abs(b / se))))
    },
    vcov = matrix_json(vcov(m)),
    confint_wald = ci_table(confint(m, method = "Wald")),
    nakagawa = nakagawa(m),
    tab_model = tab_model_numbers(m, link)
  )
  if (profile) {
    p <- tryCatch(with_warnings(confint(m, method = "profile", oldNames = FALSE)),
                  error = function(e) NULL)
    if (!is.null(p)) {
      out$confint_profile <- ci_table(p$value)
      out$confint_profile_warnings <- p$warnings
    }
  }
  out
}

anova_table <- function(...) {
  a <- anova(...)
  data.frame(model = rownames(a), npar = a$npar, AIC = a$AIC, BIC = a$BIC,
             logLik = a$logLik, deviance = a$deviance, Chisq = a$Chisq,
             Df = a$Df, p_value = a[["Pr(>Chisq)"]], row.names = NULL)
}

small_fit <- function(m) list(formula = deparse(formula(m)), fixef = as.list(fixef(m)),
                              theta = unname(getME(m, "theta")),
                              minus_2_logLik = -2 * as.numeric(logLik(m)))

cases <- list()

m_cbpp <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
cases$cbpp_binomial <- glmer_case(m_cbpp, "logit")
m_cbpp0 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cbpp, binomial)
cases$cbpp_binomial$anova <- list(reduced = small_fit(m_cbpp0), table = anova_table(m_cbpp0, m_cbpp))

m_agq <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, nAGQ = 25)
cases$cbpp_binomial_agq25 <- glmer_case(m_agq, "logit", profile = FALSE)

m_grouse <- glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), grouse, poisson)
cases$grouseticks_poisson <- glmer_case(m_grouse, "log")
null_grouse <- glmer(TICKS ~ 1 + (1 | BROOD) + (1 | LOCATION), grouse, poisson)
cases$grouseticks_poisson$nakagawa$null_model <- small_fit(null_grouse)
m_grouse0 <- glmer(TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION), grouse, poisson)
cases$grouseticks_poisson$anova <- list(reduced = small_fit(m_grouse0),
                                        table = anova_table(m_grouse0, m_grouse))

m_sleep <- glmer(slow ~ Days + (Days | Subject), sleep, binomial)
cases$sleepstudy_binary <- glmer_case(m_sleep, "logit", profile = FALSE)
m_sleep0 <- glmer(slow ~ Days + (1 | Subject), sleep, binomial)
cases$sleepstudy_binary$anova <- list(reduced = small_fit(m_sleep0),
                                      table = anova_table(m_sleep0, m_sleep))

# Other links for the distribution-specific variance (probit: 1, cloglog: pi^2/6).
m_probit <- glmer(slow ~ Days + (1 | Subject), sleep, binomial(link = "probit"))
cases$sleepstudy_binary_probit <- glmer_case(m_probit, "probit", profile = FALSE)
m_cloglog <- glmer(slow ~ Days + (1 | Subject), sleep, binomial(link = "cloglog"))
cases$sleepstudy_binary_cloglog <- glmer_case(m_cloglog, "cloglog", profile = FALSE)

software <- list(
  R = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  performance = as.character(packageVersion("performance")),
  insight = as.character(packageVersion("insight")),
  Matrix = as.character(packageVersion("Matrix"))
)
write_json(list(software = software, cases = cases), "glmer_extra.json", digits = NA,
           auto_unbox = TRUE, na = "null", dataframe = "rows", pretty = FALSE)
