# R's poly() (orthogonal, and raw = TRUE) in lm and lmer fits with missing
# values (na.omit): the references of tests/test_dask_poly.py, which fits the
# same data from Dask collections. Run from this folder: Rscript make_dask_poly.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(20261202)
n <- 300
g <- paste0("g", sample(1:12, n, replace = TRUE))
u <- rnorm(12, 0, 0.8)[match(g, paste0("g", 1:12))]
x1 <- round(rnorm(n, 1, 1.3), 4)
x2 <- round(runif(n, -2, 2), 4)
x3 <- round(rnorm(n, 0.5, 1), 4)
# badly scaled: a spread of 1 around a million
big <- 1e6 + round(rnorm(n), 4)
y <- round(1 + 0.8 * x1 - 0.3 * x1^2 + 0.1 * x1^3 - x2 + 0.4 * x3^2 +
           0.5 * (big - 1e6)^2 + u + rnorm(n, 0, 0.7), 4)
d <- data.frame(g = g, x1 = x1, x2 = x2, x3 = x3, big = big, y = y)
# rows missing y or x2 still give poly(x1) its basis (model.frame evaluates
# poly on every row before na.omit); raw = TRUE takes a missing x3
d$y[1:3] <- NA
d$x2[c(5, 6, 150)] <- NA
d$x3[c(8, 200)] <- NA
write.csv(d, "dask_poly.csv", row.names = FALSE, na = "")
new <- data.frame(x1 = c(-2, 0, 1, 3.5), x2 = c(0, 1, -1, 0.5),
                  x3 = c(0, 1, 2, -1), big = 1e6 + c(-1, 0, 0.5, 2), g = "g1")
lm_out <- function(m) list(
  coef = as.list(coef(m)), se = as.list(coef(summary(m))[, 2]),
  sigma = sigma(m), nobs = nobs(m), loglik = as.numeric(logLik(m)),
  predict = unname(predict(m, new)))
lmer_out <- function(m) list(
  coef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
  sigma = sigma(m), nobs = nobs(m), theta = unname(getME(m, "theta")),
  deviance = unname(REMLcrit(m)), predict = unname(predict(m, new, re.form = NA)))
# far: x a million plus N(0, 1) at full precision (written to the last
# bit), where a mean summed in another order can be a bit off R's
far <- data.frame(big = 1e6 + rnorm(4000))
far$y <- (far$big - 1e6)^2 + log(far$big - 999990) + rnorm(4000)
writeLines(c("big,y", sprintf("%.17g,%.17g", far$big, far$y)), "far.csv")
far <- read.csv("far.csv")
exact <- function(coefs) lapply(coefs, function(v) sprintf("%.17g", v))
out <- list(
  lm_poly2 = lm_out(lm(y ~ poly(x1, 2) + x2, d)),
  lm_raw2 = lm_out(lm(y ~ poly(x3, 2, raw = TRUE) + x2, d)),
  lm_big3 = lm_out(lm(y ~ poly(big, 3) + x2, d)),
  lmer_poly3 = lmer_out(lmer(y ~ poly(x1, 3) + x2 + (1 | g), d)),
  # the basis predict uses (predict.poly): the recurrence's alpha and norm2,
  # as text to the last bit (toJSON gives 15 digits)
  coefs_big3 = exact(attr(poly(d$big, 3), "coefs")),
  coefs_x1_3 = exact(attr(poly(d$x1, 3), "coefs")),
  coefs_far3 = exact(attr(poly(far$big, 3), "coefs")),
  versions = list(R = R.version.string,
                  lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "dask_poly.json")
