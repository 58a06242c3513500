# Makes lm_extra.json: more stats::lm references for tests/test_pooled.py,
# tests/test_fixed.py and tests/test_summary_lm.py (R 4.2.2, sandwich, lmtest).
# Run from tests/data:  Rscript make_lm_extra.R
# Numbers are written with 15 significant digits (jsonlite); tests compare
# them with a relative tolerance of 1e-8 or looser where noted.
library(jsonlite)
library(sandwich)
library(lmtest)
d <- read.csv("../../skmixed/datasets/data/sleepstudy.csv")
d$Subject <- factor(d$Subject, levels = as.character(sort(as.numeric(unique(d$Subject)))))
set.seed(1)
d$x <- signif(rnorm(nrow(d)), 12)  # an extra covariate, shipped in the JSON

lm_case <- function(m) {
  s <- summary(m)
  cf <- coef(m)
  full <- matrix(NA, length(cf), 4, dimnames = list(names(cf), NULL))
  full[!is.na(cf), ] <- coef(s)
  list(
    coef_names = names(cf),
    estimate = unname(full[, 1]), std_error = unname(full[, 2]),
    t_value = unname(full[, 3]), p_value = unname(full[, 4]),
    sigma = s$sigma, df_residual = m$df.residual, rank = m$rank,
    r_squared = s$r.squared, adj_r_squared = s$adj.r.squared,
    fstatistic = if (is.null(s$fstatistic)) NULL else unname(s$fstatistic),
    logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
    fitted = unname(fitted(m)),
    summary_text = capture.output(print(s))
  )
}

cases <- list()
cases$days <- lm_case(lm(Reaction ~ Days, d))
cases$days_subject <- lm_case(lm(Reaction ~ Days + Subject, d))
cases$days_x_subject <- lm_case(lm(Reaction ~ Days * Subject, d))
cases$days_x_cov_subject <- lm_case(lm(Reaction ~ Days + x + Subject, d))
cases$slopes_cov <- lm_case(lm(Reaction ~ Days + x + Subject + Days:Subject, d))
d350 <- d
d350$Subject <- relevel(d350$Subject, ref = "350")
cases$reference_350 <- lm_case(lm(Reaction ~ Days + Subject, d350))
cases$no_intercept <- lm_case(lm(Reaction ~ 0 + Days, d))
d$Days2 <- 2 * d$Days
cases$aliased <- lm_case(lm(Reaction ~ Days + Days2 + x, d))
dna <- d
dna$Reaction[c(3, 50, 101)] <- NA
cases$missing <- lm_case(lm(Reaction ~ Days, dna))
cases$intercept_only <- lm_case(lm(Reaction ~ 1, d))
dsmall <- d[1:6, ]
cases$few_df <- lm_case(lm(Reaction ~ Days, dsmall))

m <- lm(Reaction ~ Days + x, d)
V <- vcovCL(m, cluster = ~Subject)  # type "HC1", cadjust = TRUE: CR1
ct <- coeftest(m, vcov. = V)
wt <- waldtest(m, vcov = V, test = "F")
cases$cluster <- list(
  coef_names = rownames(ct), estimate = unname(ct[, 1]), std_error = unname(ct[, 2]),
  t_value = unname(ct[, 3]), p_value = unname(ct[, 4]),
  vcov = unname(V), fvalue = wt$F[2], f_pvalue = wt[2, "Pr(>F)"],
  confint = unname(coefci(m, vcov. = V))
)
write_json(list(x = d$x, cases = cases), "lm_extra.json", digits = NA,
           auto_unbox = TRUE, na = "null")
