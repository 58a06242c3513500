# Makes cluster_few.json: cluster-robust (CR1) standard errors with fewer
# clusters than slopes, for tests/test_pooled.py. Sleepstudy's first three
# subjects, Reaction ~ Days + I(Days^2) + I(Days^3): three slopes, three
# clusters. The CR1 covariance has rank at most G - 1 = 2 (the cluster score
# sums add up to X'r = 0), so the robust Wald F of the three slopes is not
# defined: lmtest::waldtest stops ("system is computationally singular") or
# returns rounding noise, and Stata reports F as missing.
# Run from tests/data/cluster_few:  Rscript make_cluster_few.R
library(jsonlite)
library(sandwich)
library(lmtest)
d <- read.csv("../../../skmixed/datasets/data/sleepstudy.csv")
d <- d[d$Subject %in% c(308, 309, 310), ]
m <- lm(Reaction ~ Days + I(Days^2) + I(Days^3), d)
V <- vcovCL(m, cluster = ~Subject, type = "HC1")
ct <- coeftest(m, vcov. = V)
wald <- tryCatch(waldtest(m, vcov = V, test = "F")$F[2], error = function(e) conditionMessage(e))
out <- list(
  coef_names = names(coef(m)), estimate = unname(coef(m)),
  std_error = unname(sqrt(diag(V))), t_value = unname(ct[, 3]), p_value = unname(ct[, 4]),
  rank_V = qr(V[-1, -1])$rank, waldtest = wald
)
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "cluster_few.json")
