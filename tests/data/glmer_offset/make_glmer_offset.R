# Makes glmer_offset.json: glmer fits with an offset, for
# tests/test_glmm_offset.py. The data are simulated here (set.seed below):
#   - counts.csv (600 rows, 30 groups g01..g30): exposure in (0.5, 20)
#     (log-uniform), x ~ N(0, 1), y ~ Poisson(exposure * exp(-1 + 0.4 x +
#     b_g + c_g x)), b_g ~ N(0, 0.6^2), c_g ~ N(0, 0.3^2); log_exposure =
#     log(exposure) is a column of the CSV (the offset column of the tests).
#   - events.csv (500 rows, 25 groups h01..h25): time in (0.2, 5), x ~
#     N(0, 1), y = 1 if an event happened in the time at risk: P(y = 1) =
#     1 - exp(-time * exp(-0.7 + 0.5 x + b_h)), b_h ~ N(0, 0.7^2), the
#     cloglog model with offset log(time); the same data fitted with the
#     logit link too (offset(log_time) is then only some known shift).
# Models (glmer with offset(...) in the formula; default control, and
# "tight": PIRLS and the optimiser run to convergence, tolPwrss = 1e-14,
# nloptwrap xtol_abs = 1e-12, ftol_abs = 1e-14; the tight fit is the
# reference for equality, the default one shows how far glmer's defaults
# stop from it. With tolPwrss = 1e-12 PIRLS still stopped early on
# pois_int: its deviance function was 1.6e-5 above the converged value at
# the same (theta, beta), and its Hessian SE of x 0.5% off):
#   pois_int:   y ~ x + (1 | g) + offset(log_exposure), poisson
#   pois_slope: y ~ x + (1 + x | g) + offset(log_exposure), poisson
#   pois_agq:   y ~ x + (1 | g) + offset(log_exposure), poisson, nAGQ = 10
#   cloglog:    y ~ x + (1 | h) + offset(log_time), binomial(cloglog)
#   logit:      y ~ x + (1 | h) + offset(log_time), binomial(logit)
#   probit:     y ~ x + (1 | h) + offset(log_time), binomial(probit)
#   glm:        glm(y ~ x + offset(log_exposure), poisson) on counts.csv
# Each: logLik, AIC, BIC, deviance(m), theta, beta, vcov (Hessian, lme4's
# default) and vcov(use.hessian = FALSE), conditional modes and condsd of
# the first three levels, fitted values of the first 5 rows, and
# predictions on newdata.csv (rows of seen levels and of a level "new",
# exposures and times unlike the training rows): type "link" and
# "response", with the conditional modes (allow.new.levels = TRUE) and
# without (re.form = NA). pois_int also has confint(method = "profile")
# and performance::r2_nakagawa().
# Run from tests/data/glmer_offset:  Rscript make_glmer_offset.R
# Numbers are exact doubles (jsonlite digits = NA).
suppressMessages({
  library(jsonlite)
  library(lme4)
})
set.seed(20261130)
if (!file.exists("counts.csv")) {
  n <- 600; m <- 30
  g <- rep(seq_len(m), each = n / m)
  exposure <- exp(runif(n, log(0.5), log(20)))
  x <- rnorm(n)
  b <- rnorm(m, sd = 0.6); c <- rnorm(m, sd = 0.3)
  y <- rpois(n, exposure * exp(-1 + 0.4 * x + b[g] + c[g] * x))
  write.csv(data.frame(y = y, x = x, log_exposure = log(exposure),
                       g = sprintf("g%02d", g)),
            "counts.csv", row.names = FALSE)
  n <- 500; m <- 25
  h <- sample.int(m, n, replace = TRUE)
  time <- runif(n, 0.2, 5)
  x <- rnorm(n)
  b <- rnorm(m, sd = 0.7)
  p <- 1 - exp(-time * exp(-0.7 + 0.5 * x + b[h]))
  y <- rbinom(n, 1, p)
  write.csv(data.frame(y = y, x = x, log_time = log(time),
                       h = sprintf("h%02d", h)),
            "events.csv", row.names = FALSE)
  write.csv(data.frame(
    x = c(-1.5, 0, 0.5, 1.2, 2, -0.3, 0.8, 0),
    log_exposure = log(c(0.1, 1, 5, 30, 100, 2, 50, 1)),
    log_time = log(c(0.05, 0.5, 1, 3, 10, 0.3, 8, 1)),
    g = c("g01", "g02", "g03", "new", "g30", "new", "g15", "g07"),
    h = c("h01", "h02", "h03", "new", "h25", "new", "h12", "h07")),
    "newdata.csv", row.names = FALSE)
}
counts <- read.csv("counts.csv")
events <- read.csv("events.csv")
newdata <- read.csv("newdata.csv")
tight <- glmerControl(
  optimizer = "nloptwrap", tolPwrss = 1e-14,
  optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5)
)
summarise <- function(m, factor) {
  re <- ranef(m, condVar = TRUE)[[factor]]
  pv <- attr(re, "postVar")
  out <- list(
    loglik = as.numeric(logLik(m)),
    aic = AIC(m), bic = BIC(m),
    deviance = deviance(m),
    theta = unname(getME(m, "theta")),
    beta = unname(fixef(m)),
    beta_names = names(fixef(m)),
    vcov = unname(as.matrix(vcov(m))),
    vcov_rx = unname(as.matrix(vcov(m, use.hessian = FALSE))),
    ranef_levels = rownames(re)[1:3],
    ranef = unname(as.matrix(re[1:3, , drop = FALSE])),
    ranef_sd = unname(t(sapply(1:3, function(i) sqrt(diag(as.matrix(pv[, , i])))))),
    fitted_head = unname(fitted(m)[1:5]),
    predict = list(
      link = unname(predict(m, newdata, type = "link", allow.new.levels = TRUE)),
      response = unname(predict(m, newdata, type = "response",
                                allow.new.levels = TRUE)),
      link_population = unname(predict(m, newdata, type = "link", re.form = NA)),
      response_population = unname(predict(m, newdata, type = "response",
                                            re.form = NA))
    ),
    warnings = as.list(m@optinfo$conv$lme4$messages)
  )
  out
}
fit_both <- function(formula, data, family, factor, nAGQ = 1) {
  list(
    formula = deparse(formula),
    nAGQ = nAGQ,
    default = summarise(glmer(formula, data, family = family, nAGQ = nAGQ), factor),
    tight = summarise(glmer(formula, data, family = family, nAGQ = nAGQ,
                            control = tight), factor)
  )
}
out <- list()
out$pois_int <- fit_both(y ~ x + (1 | g) + offset(log_exposure), counts,
                         poisson, "g")
m <- glmer(y ~ x + (1 | g) + offset(log_exposure), counts, family = poisson,
           control = tight)
ci <- confint(m, method = "profile", oldNames = FALSE)
out$pois_int$profile <- list(term = rownames(ci), lower = unname(ci[, 1]),
                             upper = unname(ci[, 2]))
r2 <- suppressWarnings(performance::r2_nakagawa(m))
out$pois_int$r2 <- list(marginal = unname(r2$R2_marginal),
                        conditional = unname(r2$R2_conditional))
out$pois_slope <- fit_both(y ~ x + (1 + x | g) + offset(log_exposure), counts,
                           poisson, "g")
out$pois_agq <- fit_both(y ~ x + (1 | g) + offset(log_exposure), counts,
                         poisson, "g", nAGQ = 10)
out$cloglog <- fit_both(y ~ x + (1 | h) + offset(log_time), events,
                        binomial(link = "cloglog"), "h")
out$logit <- fit_both(y ~ x + (1 | h) + offset(log_time), events,
                      binomial, "h")
out$probit <- fit_both(y ~ x + (1 | h) + offset(log_time), events,
                       binomial(link = "probit"), "h")
g <- glm(y ~ x + offset(log_exposure), counts, family = poisson,
         control = glm.control(epsilon = 1e-14, maxit = 100))
out$glm <- list(
  formula = "y ~ x + offset(log_exposure)",
  loglik = as.numeric(logLik(g)), aic = AIC(g), deviance = deviance(g),
  beta = unname(coef(g)), vcov = unname(as.matrix(vcov(g))),
  predict = list(
    link = unname(predict(g, newdata, type = "link")),
    response = unname(predict(g, newdata, type = "response"))
  )
)
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
      "glmer_offset.json")
