# R's elementwise logical operators inside formula calls, for
# tests/test_formula_logical.py: lm's coefficients and names, and what R says
# of && and || on columns. Run from this folder:  Rscript make_logical_ops.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(20261130)
n <- 120
d <- data.frame(x = round(rnorm(n), 4), z = round(rnorm(n), 4),
                g = sprintf("g%02d", sample(1:10, n, replace = TRUE)))
d$y <- round(1 + 0.5 * d$x - 0.3 * d$z + 0.8 * (d$x > 0 & d$z < 1) +
             rnorm(10)[as.integer(factor(d$g))] + rnorm(n), 4)
write.csv(d, "logical_ops.csv", row.names = FALSE)

formulas <- c(
  "y ~ ifelse(x > 0 & z < 1, 1, 0)",
  "y ~ ifelse(x > 0 | z < -1, 1, 0)",
  "y ~ ifelse(!(x > 0), 1, 0)",
  "y ~ ifelse(!x > 0 & z > 0 | x > 1, 2, -1) + z",
  "y ~ x + I(ifelse((x > 0 | z > 0) & !(z > 1), x, 0))",
  # a logical column is a factor in model.matrix (levels FALSE, TRUE)
  "y ~ I(x > 0)",
  "y ~ z + I(x > 0 & z < 1)",
  "y ~ z * I(x > 0)",
  "y ~ 0 + I(!(x > 0))"
)
fits <- lapply(formulas, function(f) {
  m <- lm(as.formula(f), d)
  list(formula = f, names = names(coef(m)), coef = unname(coef(m)))
})
lmer_formula <- "y ~ ifelse(x > 0 & z < 1, 1, 0) + (1 | g)"
m <- lmer(as.formula(lmer_formula), d, REML = TRUE)
scalar <- function(f) tryCatch({lm(as.formula(f), d); "ok"},
                               error = function(e) conditionMessage(e),
                               warning = function(w) paste("warning:", conditionMessage(w)))
out <- list(
  lm = fits,
  lmer = list(formula = lmer_formula, names = names(fixef(m)), coef = unname(fixef(m))),
  and_and = scalar("y ~ ifelse(x > 0 && z < 1, 1, 0)"),
  or_or = scalar("y ~ ifelse(x > 0 || z < 1, 1, 0)"),
  software = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "logical_ops.json")
