# Makes glmer_formula.json: glmer fits from whole formulas, for
# tests/test_glmer_formula.py (skmixed.glmer). Data:
#   - cbpp.csv: lme4's cbpp (herd, incidence, size, period).
#   - sim.csv (simulated here, set.seed below; 360 rows): g (24 levels
#     g01..g24), h (15 levels h01..h15, crossed with g), x ~ N(0, 1), f a
#     3-level factor (a, b, c), exposure in (0.5, 20) (log-uniform), n
#     trials in 1..12, and three responses:
#       resp  "no"/"yes" (binary, logit(p) = -0.3 + 0.8 x + f effect + b_g + c_h)
#       count ~ Poisson(exposure * exp(-1 + 0.4 x + f effect + b_g))
#       s ~ Binomial(n, plogis(0.2 + 0.6 x + b_g + c_g x)) successes of n
# Models (glmer run to convergence: tolPwrss = 1e-14, nloptwrap xtol_abs =
# 1e-12, ftol_abs = 1e-14):
#   cbind:  cbind(incidence, size - incidence) ~ period + (1 | herd), binomial
#   binary: resp ~ x * f + (1 | g) + (1 | h), binomial
#   offset: count ~ x + f + (1 | g) + offset(log(exposure)), poisson
#   slope:  s/n ~ x + (1 + x | g), binomial, weights = n
# Each: logLik, theta, beta with R's names, Hessian SEs (lme4's default).
# Run from tests/data/glmer_formula:  Rscript make_glmer_formula.R
suppressMessages({
  library(jsonlite)
  library(lme4)
})
set.seed(20261130)
if (!file.exists("sim.csv")) {
  n <- 360
  g <- rep(1:24, each = 15)
  h <- rep(1:15, times = 24)
  x <- rnorm(n)
  f <- sample(c("a", "b", "c"), n, replace = TRUE)
  fe <- c(a = 0, b = 0.5, c = -0.4)[f]
  bg <- rnorm(24, sd = 0.7); ch <- rnorm(15, sd = 0.5); sg <- rnorm(24, sd = 0.4)
  p <- plogis(-0.3 + 0.8 * x + fe + bg[g] + ch[h])
  resp <- ifelse(runif(n) < p, "yes", "no")
  exposure <- exp(runif(n, log(0.5), log(20)))
  count <- rpois(n, exposure * exp(-1 + 0.4 * x + fe + bg[g]))
  trials <- sample(1:12, n, replace = TRUE)
  s <- rbinom(n, trials, plogis(0.2 + 0.6 * x + bg[g] + sg[g] * x))
  write.csv(data.frame(g = sprintf("g%02d", g), h = sprintf("h%02d", h),
                       x = x, f = f, exposure = exposure, n = trials,
                       resp = resp, count = count, s = s),
            "sim.csv", row.names = FALSE)
}
cbpp <- read.csv("cbpp.csv")
cbpp$period <- factor(cbpp$period)
sim <- read.csv("sim.csv")
sim$resp <- factor(sim$resp)
sim$f <- factor(sim$f)
tight <- glmerControl(
  optimizer = "nloptwrap", tolPwrss = 1e-14,
  optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5)
)
summarise <- function(m) {
  list(
    formula = paste(deparse(formula(m)), collapse = ""),
    loglik = as.numeric(logLik(m)),
    deviance = deviance(m),
    theta = unname(getME(m, "theta")),
    beta = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    nobs = nobs(m),
    warnings = as.list(m@optinfo$conv$lme4$messages)
  )
}
out <- list()
out$cbind <- summarise(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                             cbpp, family = binomial, control = tight))
out$binary <- summarise(glmer(resp ~ x * f + (1 | g) + (1 | h), sim,
                              family = binomial, control = tight))
out$offset <- summarise(glmer(count ~ x + f + (1 | g) + offset(log(exposure)), sim,
                              family = poisson, control = tight))
out$slope <- summarise(glmer(s/n ~ x + (1 + x | g), sim, weights = n,
                             family = binomial, control = tight))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "glmer_formula.json")
