# Float group labels made by arithmetic (k * 0.1 and k / 10 differ in the
# last bit for some k), for tests/test_float_groups.py. lme4 codes a numeric
# grouping variable with factor(), whose labels are as.character's 15
# significant digits: 0.1 * 3 and 3 / 10 are one level "0.3".
# The CSV holds k and how the label is computed (a CSV of the labels would
# round them); the test computes g the same way. Run from this folder:
#   Rscript make_float_groups.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(20261130)
k <- rep(1:12, each = 10)
how <- rep(c("times", "divide"), length.out = length(k))
d <- data.frame(k = k, how = how, x = round(rnorm(length(k)), 4))
d$y <- round(2 + 0.5 * d$x + rnorm(12, 0, 1)[k] + rnorm(length(k), 0, 0.5), 4)
write.csv(d, "float_groups.csv", row.names = FALSE)
d$g <- ifelse(d$how == "times", d$k * 0.1, d$k / 10)
m <- lmer(y ~ x + (1 | g), d, REML = TRUE)
re <- ranef(m)$g
out <- list(
  distinct_doubles = length(unique(d$g)),
  levels = levels(factor(d$g)),
  ranef_levels = rownames(re),
  ranef = unname(re[, 1]),
  fixef = as.list(fixef(m)),
  theta = unname(getME(m, "theta")),
  REML = unname(REMLcrit(m)),
  software = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "float_groups.json")
