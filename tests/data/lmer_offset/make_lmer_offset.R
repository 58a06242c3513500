# Makes lmer_offset.json: lmer fits with an offset, for
# tests/test_lmer_offset.py. The data are simulated here (set.seed below):
#   - rates.csv (150 rows, 15 groups g01..g15): x ~ N(0, 1), exposure e in
#     (0.5, 10) (log-uniform), o ~ N(3, 2^2) a known shift, and
#     y = 2 + 0.8 x + log(e) + o + b_g + c_g x + N(0, 0.7^2),
#     b_g ~ N(0, 1), c_g ~ N(0, 0.4^2).
#   - newdata.csv: rows of seen levels and of a level "new".
# Models (lme4's default control):
#   col_reml:   lmer(y ~ x + (1 | g), offset = o)          (REML)
#   col_ml:     the same with REML = FALSE
#   slope_reml: lmer(y ~ x + (1 + x | g) + offset(o))
#   expr_reml:  lmer(y ~ x + offset(log(e)) + (1 | g))
#   sum_ml:     lmer(y ~ x + offset(log(e)) + offset(o) + (1 | g), REML = FALSE)
# Each: the REML criterion or deviance, logLik, AIC, BIC, theta, beta,
# vcov, sigma, lmerTest's coefficient table (Satterthwaite), the first
# three conditional modes, fitted values and residuals of the first 5 rows,
# the summary's scaled-residual quantiles, predict(newdata) with the modes
# (allow.new.levels = TRUE) and without (re.form = NA) -- for col_reml and
# col_ml from the same model with the offset as a formula term,
# y ~ x + offset(o) + (1 | g): lme4's predict(newdata) leaves out an offset
# given as the offset= argument (it predicts as if o were 0 on the new
# rows), and reads an offset(o) term from newdata --,
# performance::r2_nakagawa() and the variance of the fixed part it uses
# (insight::get_variance_fixed). col_reml also: confint(method = "Wald"),
# lmerTest's anova() (type III) and anova() against y ~ 1 + (1 | g) with
# the same offset (refitted with ML); col_ml: confint(method = "profile").
# Run from tests/data/lmer_offset:  Rscript make_lmer_offset.R
# Numbers are exact doubles (jsonlite digits = NA).
suppressMessages({
  library(jsonlite)
  library(lmerTest)
  library(performance)
})
set.seed(20261130)
if (!file.exists("rates.csv")) {
  n <- 150; m <- 15
  g <- rep(seq_len(m), each = n / m)
  e <- exp(runif(n, log(0.5), log(10)))
  x <- rnorm(n)
  o <- rnorm(n, 3, 2)
  b <- rnorm(m); c <- rnorm(m, sd = 0.4)
  y <- 2 + 0.8 * x + log(e) + o + b[g] + c[g] * x + rnorm(n, sd = 0.7)
  write.csv(data.frame(y = y, x = x, e = e, o = o, g = sprintf("g%02d", g)),
            "rates.csv", row.names = FALSE)
  write.csv(data.frame(
    x = c(-1.5, 0, 0.5, 1.2, 2, -0.3),
    e = c(0.2, 1, 5, 30, 3, 2),
    o = c(0, 1, -2, 4, 3.5, 10),
    g = c("g01", "g02", "g03", "new", "g15", "new")),
    "newdata.csv", row.names = FALSE)
}
rates <- read.csv("rates.csv")
newdata <- read.csv("newdata.csv")

summarise <- function(m, predictor = m) {
  re <- ranef(m)$g
  s <- summary(m)
  coefs <- s$coefficients
  out <- list(
    criterion = if (isREML(m)) REMLcrit(m) else deviance(m),
    loglik = as.numeric(logLik(m)),
    aic = AIC(m), bic = BIC(m),
    theta = unname(getME(m, "theta")),
    beta_names = names(fixef(m)), beta = unname(fixef(m)),
    vcov = unname(as.matrix(vcov(m))),
    sigma = sigma(m),
    df = unname(coefs[, "df"]), t = unname(coefs[, "t value"]),
    p = unname(coefs[, "Pr(>|t|)"]),
    ranef_levels = rownames(re)[1:3], ranef = unname(as.matrix(re)[1:3, ]),
    fitted_head = unname(fitted(m)[1:5]),
    resid_head = unname(residuals(m)[1:5]),
    scaled_resid = unname(quantile(residuals(m, type = "pearson",
                                             scaled = TRUE))),
    predict = list(
      conditional = unname(predict(predictor, newdata, allow.new.levels = TRUE)),
      population = unname(predict(predictor, newdata, re.form = NA)),
      argument_offset = unname(predict(m, newdata, allow.new.levels = TRUE))
    ),
    r2 = unclass(r2_nakagawa(m))[c("R2_marginal", "R2_conditional")],
    var_fixed = insight::get_variance_fixed(m)
  )
  out$r2 <- lapply(out$r2, unname)
  out
}

fits <- list(
  col_reml = lmer(y ~ x + (1 | g), rates, offset = o),
  col_ml = lmer(y ~ x + (1 | g), rates, offset = o, REML = FALSE),
  slope_reml = lmer(y ~ x + (1 + x | g) + offset(o), rates),
  expr_reml = lmer(y ~ x + offset(log(e)) + (1 | g), rates),
  sum_ml = lmer(y ~ x + offset(log(e)) + offset(o) + (1 | g), rates,
                REML = FALSE)
)
as_term <- function(m) update(m, . ~ . + offset(o), offset = NULL)
predictors <- list(col_reml = as_term(fits$col_reml),
                   col_ml = as_term(fits$col_ml))
stopifnot(all.equal(fixef(predictors$col_reml), fixef(fits$col_reml)))
ref <- lapply(names(fits), function(name)
  summarise(fits[[name]], if (is.null(predictors[[name]])) fits[[name]]
                          else predictors[[name]]))
names(ref) <- names(fits)

m <- fits$col_reml
ci <- confint(m, method = "Wald")[c("(Intercept)", "x"), ]
ref$col_reml$confint_wald <- list(lower = unname(ci[, 1]), upper = unname(ci[, 2]))
a3 <- anova(m)
ref$col_reml$anova3 <- list(
  sum_sq = a3[["Sum Sq"]], den_df = a3[["DenDF"]], F = a3[["F value"]],
  p = a3[["Pr(>F)"]])
m0 <- lmer(y ~ 1 + (1 | g), rates, offset = o)
lrt <- suppressMessages(anova(m0, m))
ref$col_reml$lrt <- list(
  loglik = lrt$logLik, chisq = lrt$Chisq[2], p = lrt[["Pr(>Chisq)"]][2])
pr <- confint(fits$col_ml, method = "profile", oldNames = FALSE)
ref$col_ml$confint_profile <- list(
  names = rownames(pr), lower = unname(pr[, 1]), upper = unname(pr[, 2]))

# What the summary prints (for the formula line of each fit).
ref$formulas <- lapply(fits, function(m) deparse(formula(m)))
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "lmer_offset.json")
print(summary(fits$col_reml))
print(summary(fits$expr_reml))
print(ref$col_reml$r2); print(ref$col_reml$var_fixed)
print(var(model.matrix(fits$col_reml) %*% fixef(fits$col_reml)))
