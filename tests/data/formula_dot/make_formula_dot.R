# References for R's `.` in formulas (every column of the data but the
# response): lm and lmer fits on sleepstudy with an added column z.
# Run: Rscript make_formula_dot.R  (writes sleepstudy_z.csv, formula_dot.json)
suppressMessages({library(lme4); library(jsonlite)})
d <- sleepstudy
set.seed(20261201)
d$z <- round(rnorm(nrow(d)), 6)
d$Subject <- as.character(d$Subject)
write.csv(d, "sleepstudy_z.csv", row.names = FALSE)
d$Subject <- factor(d$Subject)
lm_case <- function(formula, data) {
  m <- lm(as.formula(formula), data)
  list(formula = formula, columns = names(data), coef = as.list(coef(m)))
}
lmer_case <- function(formula) {
  m <- lmer(as.formula(formula), d, REML = TRUE)
  list(formula = formula, fixef = as.list(fixef(m)), reml = REMLcrit(m))
}
out <- list(
  lm = list(
    lm_case("Reaction ~ .", d),
    lm_case("Reaction ~ . - Subject", d),
    lm_case("Reaction ~ .^2", d[, c("Reaction", "Days", "z")]),
    lm_case("Reaction ~ 0 + . - Subject", d)
  ),
  lmer = list(
    lmer_case("Reaction ~ . - Subject + (Days | Subject)"),
    lmer_case("Reaction ~ . * Days - Subject + (1 | Subject)")
  ),
  R = R.version.string, lme4 = as.character(packageVersion("lme4"))
)
write_json(out, "formula_dot.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
