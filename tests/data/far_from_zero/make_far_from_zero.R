# Makes far_from_zero.json: a fixed-effect column far from 0 relative to its
# spread (x1 = N(0, 1) + 1e4; 600 rows, 30 groups; simulated by skmixed's
# tests), which is not a random slope in (1 | g) and is a slope without an
# intercept in (x1 || g). Its cross-products lose ~8 digits at the data's
# scale. lme4's REML criterion varies by ~2e-7 when the rows are permuted.
# Run from tests/data/far_from_zero:  Rscript make_far_from_zero.R
suppressPackageStartupMessages(library(lme4))
library(jsonlite)
d <- read.csv("far_from_zero.csv")
fit <- function(f) {
  m <- lmer(f, d)
  list(reml = REMLcrit(m), theta = unname(getME(m, "theta")),
       fixef = unname(fixef(m)), se = unname(sqrt(diag(as.matrix(vcov(m))))),
       sigma = sigma(m), singular = isSingular(m))
}
out <- list(intercept = fit(y ~ x1 + (1 | g)), uncorrelated = fit(y ~ x1 + (x1 || g)))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "far_from_zero.json")
