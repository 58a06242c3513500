# References for tests/test_glmm_user2.py: glmer on two simulated data sets,
# as a user fits them, for numbers the other references do not reach:
#   binary.csv (600 rows): grouping factors g (30 levels), a (10) and b
#     (4, nested in a), x, z, a factor f, 0/1 responses yb, and w, a
#     non-integer prior weight in [0.6, 3] (every round(w) > 0).
#   separated.csv (300 rows): g (20 levels), h (A/B), x with a large
#     effect (nearly separated), y 0/1.
# Models (glmer run to convergence: tolPwrss = 1e-14, nloptwrap xtol_abs =
# 1e-12, ftol_abs = 1e-14):
#   uncorr:   yb ~ x + z + (x || g)
#   crossed:  yb ~ x + (1 + x | g) + (1 | a)
#   gxh:      y ~ x + (1 | g:h)                      (separated.csv)
#   weighted: yb ~ x + z + (1 | g), weights = w      (non-integer weights)
#   weighted_agq: the same with nAGQ = 5
#   factor_slope: y ~ x + (0 + h | g)               (separated.csv; singular)
# Each: logLik, AIC, BIC, theta, beta, Hessian SEs (lme4's default vcov).
# Run from tests/data/glmer_user2:  Rscript make_glmer_user2.R
suppressMessages({
  library(jsonlite)
  library(lme4)
})
set.seed(42)
n <- 600
g <- sample(sprintf("g%02d", 1:30), n, replace = TRUE)
a <- sample(sprintf("a%02d", 1:10), n, replace = TRUE)
b <- sample(c("b1", "b2", "b3", "b4"), n, replace = TRUE)
x <- round(rnorm(n), 4); z <- round(rnorm(n), 4)
f <- sample(c("lo", "mid", "hi"), n, replace = TRUE)
gi <- match(g, sprintf("g%02d", 1:30))
b0 <- rnorm(30, 0, 0.8); b1 <- rnorm(30, 0, 0.5)
ab <- rnorm(40, 0, 0.6)[match(paste(a, b), unique(paste(a, b)))]
ai <- rnorm(10, 0, 0.5)[match(a, sprintf("a%02d", 1:10))]
fe <- c(lo = 0, mid = 0.4, hi = -0.5)[f]
eta <- -0.2 + 0.7 * x - 0.3 * z + fe + 0.3 * x * (f == "hi") + b0[gi] + b1[gi] * x + ai + ab
yb <- rbinom(n, 1, plogis(eta))
w <- round(runif(n, 0.6, 3), 2)
binary <- data.frame(g, a, b, x, z, f, yb, w)
write.csv(binary, "binary.csv", row.names = FALSE)

set.seed(7)
n <- 300
g <- sample(sprintf("s%02d", 1:20), n, replace = TRUE)
x <- round(rnorm(n), 4)
u <- rnorm(20, 0, 1)[match(g, sprintf("s%02d", 1:20))]
y <- rbinom(n, 1, plogis(-0.5 + 5 * x + u))
y[g == "s01"] <- 1
h <- sample(c("A", "B"), n, replace = TRUE)
separated <- data.frame(g, x, y, h)
write.csv(separated, "separated.csv", row.names = FALSE)

# converged as far as glmer goes: the SEs are compared to 3e-5
tight <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-14,
                      optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5))
summarise <- function(m) list(
  theta = unname(getME(m, "theta")), beta = as.list(fixef(m)),
  se = as.list(sqrt(diag(as.matrix(vcov(m))))),
  loglik = as.numeric(logLik(m)), aic = AIC(m), bic = BIC(m),
  formula = paste(deparse(formula(m)), collapse = ""),
  warnings = as.list(m@optinfo$conv$lme4$messages)
)
out <- list()
out$uncorr <- summarise(glmer(yb ~ x + z + (x || g), binary, binomial, control = tight))
out$crossed <- summarise(glmer(yb ~ x + (1 + x | g) + (1 | a), binary, binomial,
                               control = tight))
out$gxh <- summarise(glmer(y ~ x + (1 | g:h), separated, binomial, control = tight))
out$weighted <- summarise(suppressWarnings(
  glmer(yb ~ x + z + (1 | g), binary, binomial, weights = w, control = tight)))
out$weighted_agq <- summarise(suppressWarnings(
  glmer(yb ~ x + z + (1 | g), binary, binomial, weights = w, nAGQ = 5,
        control = tight)))
out$factor_slope <- summarise(glmer(y ~ x + (0 + h | g), separated, binomial,
                                    control = tight))
out$software <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "glmer_user2.json")
