# Makes glmer_far_from_zero.json: GLMMs (1 | g) beside fixed-effect columns
# far from 0 relative to their spread, for tests/test_glmm_far_from_zero.py.
#   - poisson.csv (600 rows, 30 groups; simulated with numpy, seed 5):
#     y ~ x1 + (1 | g), x1 = 1e4 + N(0, 1), y Poisson with log mean
#     0.5 + 0.3 (x1 - 1e4) + b_g, b_g ~ N(0, 0.5^2).
#   - binary.csv (1000 rows, 40 groups; simulated below): y ~ year + x2 +
#     (1 | g), year an integer in 2000..2020, x2 = 1e4 + N(0, 1), y binary
#     with logit -0.3 + 0.08 (year - 2010) + 0.5 (x2 - 1e4) + b_g,
#     b_g ~ N(0, 0.8^2).
# Each model is fitted twice by glmer (Laplace, nAGQ = 1, default control):
# on the data's columns ("raw"; for the Poisson model glmer warns that it
# failed to converge and that the model is nearly unidentifiable, "Rescale
# variables?"; for the binary one it stops with a PIRLS error), and on the
# same columns centred at their means ("centred", as glmer's warning
# advises), with β, its covariance mapped back to the data's columns
# (β0 = β̃0 - Σ mean_j β̃j, vcov = M ṽcov Mᵀ). The likelihood is the same
# function of the model either way, so the centred fit is the better-
# converged glmer optimum of the same model. glmer's defaults stop PIRLS
# early (tolPwrss = 1e-7): its logLik is then 1.6e-5 (Poisson) and 1.5e-4
# (binary) below the model's maximum, and its Hessian's standard errors
# move by up to 0.5%. "centred_tight" is the centred fit once more with
# PIRLS and the optimiser run to convergence (tolPwrss = 1e-12, nloptwrap
# with xtol_abs = 1e-12, ftol_abs = 1e-14): the reference for equality.
# "profile_centred" (Poisson): confint(method = "profile") of the centred
# fit, for the SD and the slope (the same parameters as the data's; the
# centred intercept is not the data's). On the data's columns glmer's
# profile gives NA for the SD and the intercept, with 50+ warnings.
# "scaled" (Poisson): glmer (default control) on x1 - mean(x1) multiplied
# by 1e6 and by 1e-6: a column whose spread is far from 1 (glmer stops with
# a PIRLS error at 1e6 and warns at 1e-6). "beta_fit" and
# "se_fit" are the fitted columns' own (unmapped) estimates.
# "slope" (Poisson): y ~ x1 + (x1 | g), the shifted column a correlated
# random slope too. glmer on the data's columns ("raw") ends at a singular
# fit 0.34 below the maximum; "centred_tight" is glmer run to convergence on
# x1 - mean(x1), its random-effects covariance mapped back
# (Σ = A Σ̃ Aᵀ, A = [[1, -mean], [0, 1]]), with its fitted values (the
# conditional means, the same under either parametrisation).
# "small_slope" (Poisson): y ~ x1 + (x1 || g) with x1 = 1e-5 (x1 - mean):
# glmer on that column ("raw"), and run to convergence on x1 - mean(x1)
# ("unit_tight"; θ of the slope is 1e5 times the small column's).
# Run from tests/data/glmer_far_from_zero:  Rscript make_glmer_far_from_zero.R
# Numbers are exact doubles (jsonlite digits = NA).
suppressMessages({
  library(jsonlite)
  library(lme4)
})
if (!file.exists("binary.csv")) {
  set.seed(20261130)
  n <- 1000; m <- 40
  g <- sample.int(m, n, replace = TRUE)
  year <- sample(2000:2020, n, replace = TRUE)
  x2 <- 1e4 + rnorm(n)
  b <- rnorm(m, sd = 0.8)
  eta <- -0.3 + 0.08 * (year - 2010) + 0.5 * (x2 - 1e4) + b[g]
  y <- rbinom(n, 1, plogis(eta))
  write.csv(data.frame(year = year, x2 = x2, g = sprintf("g%02d", g), y = y),
            "binary.csv", row.names = FALSE)
}
summarise <- function(m, M) {
  v <- M %*% as.matrix(vcov(m)) %*% t(M)
  list(
    loglik = as.numeric(logLik(m)),
    deviance = deviance(m),
    theta = unname(getME(m, "theta")),
    beta = unname(drop(M %*% fixef(m))),
    se = unname(sqrt(diag(v))),
    beta_fit = unname(fixef(m)),
    se_fit = unname(sqrt(diag(as.matrix(vcov(m))))),
    warnings = as.list(m@optinfo$conv$lme4$messages)
  )
}
fit_case <- function(data_file, columns, family, profile = FALSE) {
  d <- read.csv(data_file)
  d$g <- factor(d$g)
  rhs <- paste(c(columns, "(1 | g)"), collapse = " + ")
  raw <- tryCatch(glmer(as.formula(paste("y ~", rhs)), d, family = family),
                  error = function(e) conditionMessage(e))
  means <- sapply(d[columns], mean)
  dc <- d
  for (col in columns) dc[[col]] <- d[[col]] - means[[col]]
  centred <- glmer(as.formula(paste("y ~", rhs)), dc, family = family)
  tight <- glmerControl(
    optimizer = "nloptwrap", tolPwrss = 1e-12,
    optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5)
  )
  centred_tight <- glmer(as.formula(paste("y ~", rhs)), dc, family = family,
                         control = tight)
  M <- diag(length(columns) + 1)
  M[1, -1] <- -means
  out <- list(
    data_file = data_file, family = family, formula = paste("y ~", rhs),
    raw = if (is.character(raw)) list(error = raw) else
      summarise(raw, diag(length(columns) + 1)),
    centred = summarise(centred, M),
    centred_tight = summarise(centred_tight, M)
  )
  if (profile) {
    out$scaled <- list()
    for (scale in c(1e6, 1e-6)) {
      ds <- dc
      ds$x1 <- dc$x1 * scale
      fit <- tryCatch(glmer(y ~ x1 + (1 | g), ds, family = family),
                      error = function(e) conditionMessage(e))
      out$scaled[[format(scale)]] <- c(
        list(scale = scale),
        if (is.character(fit)) list(error = fit) else summarise(fit, diag(2))
      )
    }
    ci <- confint(centred, method = "profile", oldNames = FALSE)
    keep <- rownames(ci) != "(Intercept)"
    out$profile_centred <- list(term = rownames(ci)[keep],
                                lower = unname(ci[keep, 1]),
                                upper = unname(ci[keep, 2]))
  }
  out
}
slope_case <- function() {
  d <- read.csv("poisson.csv")
  d$g <- factor(d$g)
  raw <- glmer(y ~ x1 + (x1 | g), d, family = poisson)
  dc <- d
  dc$x1 <- d$x1 - mean(d$x1)
  tight <- glmerControl(
    optimizer = "nloptwrap", tolPwrss = 1e-12,
    optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5)
  )
  m <- glmer(y ~ x1 + (x1 | g), dc, family = poisson, control = tight)
  M <- diag(2)
  M[1, 2] <- -mean(d$x1)
  sigma <- M %*% as.matrix(VarCorr(m)$g) %*% t(M)
  list(
    formula = "y ~ x1 + (x1 | g)",
    raw = list(loglik = as.numeric(logLik(raw)),
               singular = isSingular(raw),
               warnings = as.list(raw@optinfo$conv$lme4$messages)),
    centred_tight = c(summarise(m, M),
                      list(sigma = unname(sigma), fitted = unname(fitted(m))))
  )
}
small_slope_case <- function() {
  d <- read.csv("poisson.csv")
  d$g <- factor(d$g)
  d$x1 <- d$x1 - mean(d$x1)
  tight <- glmerControl(
    optimizer = "nloptwrap", tolPwrss = 1e-12,
    optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5)
  )
  unit <- glmer(y ~ x1 + (x1 || g), d, family = poisson, control = tight)
  ds <- d
  ds$x1 <- d$x1 * 1e-5
  raw <- glmer(y ~ x1 + (x1 || g), ds, family = poisson)
  list(
    formula = "y ~ x1 + (x1 || g)", scale = 1e-5,
    raw = summarise(raw, diag(2)),
    unit_tight = summarise(unit, diag(2))
  )
}
out <- list(
  slope = slope_case(),
  small_slope = small_slope_case(),
  poisson = fit_case("poisson.csv", "x1", "poisson", profile = TRUE),
  binary = fit_case("binary.csv", c("year", "x2"), "binomial")
)
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
      "glmer_far_from_zero.json")
