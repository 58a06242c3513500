# performance's r2_nakagawa and icc of weighted lmer fits: the references of
# tests/test_dask_analyst.py, which fits data.csv from Dask partitions (the
# variance of the fixed predictions and the random slopes' mean z'Sz are over
# the rows, unweighted). Run from this folder: Rscript make_dask_weighted_r2.R
suppressPackageStartupMessages({library(lme4); library(performance); library(jsonlite)})
d <- read.csv("data.csv")
ctrl <- lmerControl(optCtrl = list(ftol_abs = 1e-12, xtol_abs = 1e-12))
out <- list()
for (f in c("y ~ x1 + (1 | g)", "y ~ x1 + (1 + x1 | g)")) {
  m <- lmer(as.formula(f), d, weights = w, control = ctrl)
  r2 <- r2_nakagawa(m)
  ic <- icc(m)
  out[[f]] <- list(
    marginal = unname(r2$R2_marginal), conditional = unname(r2$R2_conditional),
    adjusted = unname(ic$ICC_adjusted), icc_conditional = unname(ic$ICC_conditional)
  )
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "dask_weighted_r2.json")
