# Makes lmer_weights_extra.json: weighted lmer fits with several random-effect
# terms (crossed and nested factors, an uncorrelated random slope), so that the
# weighted cross-products of every block (first factor, later factors, their
# products) are checked against lme4 -- the shared references have one factor.
# R 4.2.2, lme4 1.1-31, lmerTest 3.1-3.  Run from tests/data/weighted:
#   Rscript make_lmer_weights_extra.R
library(jsonlite)
suppressMessages(library(lmerTest))
data_dir <- "../../../skmixed/datasets/data"

pen <- read.csv(file.path(data_dir, "Penicillin.csv"))
pen$w <- 1 + ((seq_len(nrow(pen)) - 1) %% 4) / 2  # 1, 1.5, 2, 2.5, 1, ...
pastes <- read.csv(file.path(data_dir, "Pastes.csv"))
pastes$w <- 1 + ((seq_len(nrow(pastes)) - 1) %% 3)  # 1, 2, 3, 1, ...
ss <- read.csv(file.path(data_dir, "sleepstudy.csv"), colClasses = c(Subject = "character"))
ss$w <- 1 + (ss$Days %% 3)

lmer_case <- function(formula, data, reml) {
  m <- lmer(formula, data = data, weights = w, REML = reml,
            control = lmerControl(optimizer = "bobyqa"))
  s <- summary(m)
  cf <- coef(s)
  vc <- as.data.frame(VarCorr(m))
  re <- ranef(m)
  first <- names(re)[1]
  list(
    formula = deparse(formula), REML = reml, weights = data$w,
    criterion = if (reml) REMLcrit(m) else deviance(m),
    logLik = as.numeric(logLik(m)),
    theta = unname(getME(m, "theta")), theta_names = names(getME(m, "theta")),
    fixef_names = rownames(cf), estimate = unname(cf[, "Estimate"]),
    std_error = unname(cf[, "Std. Error"]), df = unname(cf[, "df"]),
    sigma = sigma(m),
    varcorr = data.frame(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, sdcor = vc$sdcor),
    ranef_factor = first, ranef_levels = rownames(re[[first]]),
    ranef_values = unname(as.matrix(re[[first]])),
    fitted = unname(fitted(m))
  )
}

cases <- list(
  penicillin_crossed = lmer_case(diameter ~ 1 + (1 | plate) + (1 | sample), pen, TRUE),
  pastes_nested = lmer_case(strength ~ 1 + (1 | batch/cask), pastes, TRUE),
  sleep_uncorrelated_ml = lmer_case(Reaction ~ Days + (Days || Subject), ss, FALSE)
)
write_json(cases, "lmer_weights_extra.json", digits = NA, auto_unbox = TRUE,
           na = "null", dataframe = "rows")
