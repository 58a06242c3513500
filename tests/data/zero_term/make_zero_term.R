# Makes zero_term.json: a random intercept and slope whose whole covariance
# is estimated as zero (a simulated data set of the skmixed sweep: 24 rows,
# 6 groups). lme4 puts theta on the boundary (the intercept's element is 0)
# and prints the correlation as NaN: it is undefined when the variances are 0.
# Run from tests/data/zero_term:  Rscript make_zero_term.R
suppressPackageStartupMessages(library(lme4))
library(jsonlite)
d <- read.csv("zero_term.csv")
m <- lmer(y ~ x1 + (x1 | g), d)
vc <- as.data.frame(VarCorr(m))
out <- list(
  reml = REMLcrit(m), theta = unname(getME(m, "theta")), singular = isSingular(m),
  vcov = vc$vcov, sdcor = vc$sdcor, fixef = unname(fixef(m)),
  printed = capture.output(print(VarCorr(m)))
)
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "zero_term.json")
