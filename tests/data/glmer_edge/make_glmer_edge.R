# Makes glmer_edge.json: models without fixed effects (p = 0), for
# tests/test_glmm_no_fixed.py. Data: ../glmer_formula/sim.csv (360 rows,
# g has 24 levels; see make_glmer_formula.R), and newdata.csv (rows for
# predictions, including a level "g99" not in the data).
# Models (glmer run to convergence: tolPwrss = 1e-14, nloptwrap xtol_abs =
# 1e-12, ftol_abs = 1e-14):
#   offset_only: count ~ 0 + offset(log(exposure)) + (1 | g), poisson
#   offset_only_agq: the same with nAGQ = 5
#   binary: resp ~ 0 + (1 | g), binomial (resp "no"/"yes")
#   lmer_reml, lmer_ml: s ~ 0 + (1 | g), REML = TRUE and FALSE
# Each: logLik, deviance, AIC, theta, conditional modes (ranef) with their
# conditional variances, predictions on newdata (type = "response",
# allow.new.levels = TRUE) and fitted values of the first 5 rows.
# Run from tests/data/glmer_edge:  Rscript make_glmer_edge.R
suppressMessages({
  library(jsonlite)
  library(lme4)
})
sim <- read.csv("../glmer_formula/sim.csv")
newdata <- data.frame(g = c("g01", "g05", "g24", "g99"),
                      exposure = c(1, 2.5, 10, 4), x = c(0, 1, -1, 0.5))
write.csv(newdata, "newdata.csv", row.names = FALSE)
tight <- glmerControl(
  optimizer = "nloptwrap", tolPwrss = 1e-14,
  optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5)
)
summarise <- function(m) {
  re <- ranef(m, condVar = TRUE)$g
  list(
    formula = paste(deparse(formula(m)), collapse = ""),
    REML = isREML(m),
    loglik = as.numeric(logLik(m)),
    df = attr(logLik(m), "df"),
    deviance = deviance(m),
    aic = AIC(m),
    theta = unname(getME(m, "theta")),
    sigma = sigma(m),
    n_fixef = length(fixef(m)),
    ranef = setNames(as.list(re[, 1]), rownames(re)),
    condvar = as.numeric(attr(re, "postVar")),
    predict = unname(predict(m, newdata, type = "response",
                             allow.new.levels = TRUE)),
    fitted = unname(fitted(m)[1:5]),
    warnings = as.list(m@optinfo$conv$lme4$messages)
  )
}
out <- list()
out$offset_only <- summarise(glmer(count ~ 0 + offset(log(exposure)) + (1 | g),
                                   sim, family = poisson, control = tight))
out$offset_only_agq <- summarise(glmer(count ~ 0 + offset(log(exposure)) + (1 | g),
                                       sim, family = poisson, nAGQ = 5,
                                       control = tight))
sim$resp <- factor(sim$resp)
out$binary <- summarise(glmer(resp ~ 0 + (1 | g), sim, family = binomial,
                              control = tight))
lctl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14))
out$lmer_reml <- summarise(lmer(s ~ 0 + (1 | g), sim, REML = TRUE, control = lctl))
out$lmer_ml <- summarise(lmer(s ~ 0 + (1 | g), sim, REML = FALSE, control = lctl))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "glmer_edge.json")
