# Makes formula_refs.json: lmerTest and stats::lm references for models whose
# fixed part is an R formula with categorical variables and interactions
# (tests/test_formula.py, tests/test_formula_models.py), and writes the two
# data sets they use to skmixed/datasets/data (Oats.csv from nlme::Oats,
# cake.csv from lme4::cake). R 4.2.2, lme4 1.1-31, lmerTest 3.1-3.
# Run from tests/data:  Rscript make_formula_refs.R
#
# Factor levels follow skmixed/datasets/data/datasets.json (sorted; numbers
# numerically). Two changes from the R packages, both recorded there:
# Oats$Block is an ordered factor in nlme (VI < V < III < IV < II < I) and
# cake$temperature an ordered factor in lme4 (polynomial contrasts in a fixed
# part); here both are unordered factors with sorted levels, so that
# temperature gets treatment contrasts (temperature185, ...), as a pandas
# categorical does in skmixed. Numbers are written with 15 significant digits.
library(jsonlite)
suppressPackageStartupMessages(library(lmerTest))

data_dir <- "../../skmixed/datasets/data"

oats_raw <- as.data.frame(nlme::Oats)[, c("Block", "Variety", "nitro", "yield")]
oats_raw$Block <- as.character(oats_raw$Block)
oats_raw$Variety <- as.character(oats_raw$Variety)
write.csv(oats_raw, file.path(data_dir, "Oats.csv"), row.names = FALSE)
cake_raw <- lme4::cake[, c("replicate", "recipe", "temperature", "angle", "temp")]
for (v in c("replicate", "recipe", "temperature")) cake_raw[[v]] <- as.character(cake_raw[[v]])
write.csv(cake_raw, file.path(data_dir, "cake.csv"), row.names = FALSE)

# Read back what the package ships, with the levels the loaders give.
chr <- function(...) c(...)
oats <- read.csv(file.path(data_dir, "Oats.csv"), colClasses = chr(Block = "character", Variety = "character"))
oats$Block <- factor(oats$Block, levels = c("I", "II", "III", "IV", "V", "VI"))
oats$Variety <- factor(oats$Variety, levels = c("Golden Rain", "Marvellous", "Victory"))
cake <- read.csv(file.path(data_dir, "cake.csv"),
                 colClasses = chr(replicate = "character", recipe = "character", temperature = "character"))
cake$replicate <- factor(cake$replicate, levels = as.character(1:15))
cake$recipe <- factor(cake$recipe, levels = c("A", "B", "C"))
cake$temperature <- factor(cake$temperature, levels = as.character(seq(175, 225, 10)))

rows <- function(tab, cols) {
  out <- data.frame(term = rownames(tab), stringsAsFactors = FALSE)
  for (i in seq_along(cols)) out[[cols[i]]] <- unname(tab[, i])
  out
}
anova_cols <- c("sum_sq", "mean_sq", "num_df", "den_df", "F_value", "p_value")

# Fitted without data= (the variables in the formula's environment), so that
# the summary prints the formula itself and no "Data:" line.
fit_in <- function(fun, formula, data, ...) {
  env <- list2env(as.list(data))
  environment(formula) <- env
  eval(as.call(c(as.name(fun), list(formula), list(...))), env)
}

lmer_case <- function(formula, data, REML = TRUE) {
  m <- fit_in("lmer", formula, data, REML = REML)
  s <- summary(m)
  a3 <- anova(m, type = 3)
  a3kr <- anova(m, type = 3, ddf = "Kenward-Roger")
  vc <- as.data.frame(VarCorr(m), order = "cov.last")
  th <- getME(m, "theta")
  list(
    formula = paste(deparse(formula, width.cutoff = 500), collapse = ""),
    REML = REML,
    fixef_names = names(fixef(m)),
    fixed_effects = rows(coef(s), c("estimate", "std_error", "df", "t_value", "p_value")),
    fixed_effects_kenward_roger = rows(coef(summary(m, ddf = "Kenward-Roger")),
                                       c("estimate", "std_error", "df", "t_value", "p_value")),
    anova_type3_satterthwaite = rows(a3, anova_cols),
    anova_type3_kenward_roger = rows(a3kr, anova_cols),
    vcov_fixef = unname(as.matrix(vcov(m))),
    varcorr = data.frame(group = vc$grp, term1 = vc$var1, term2 = vc$var2,
                         vcov = vc$vcov, sdcor = vc$sdcor, stringsAsFactors = FALSE),
    sigma = sigma(m),
    theta = list(names = names(th), values = unname(th)),
    REML_criterion = if (REML) unname(REMLcrit(m)) else NULL,
    deviance = if (REML) NULL else deviance(m),
    logLik = as.numeric(logLik(m)),
    nobs = nobs(m),
    summary_text = capture.output(print(s)),
    anova_text = capture.output(print(a3))
  )
}

cases <- list()
cases$oats <- lmer_case(yield ~ nitro + Variety + (1 | Block/Variety), oats)
cases$oats_interaction <- lmer_case(yield ~ nitro * Variety + (1 | Block/Variety), oats)
cases$cake <- lmer_case(angle ~ recipe * temperature + (1 | recipe:replicate), cake)

# lmerTest's contest with a joint hypothesis: Marvellous = Victory = 0 in oats.
m <- fit_in("lmer", yield ~ nitro + Variety + (1 | Block/Variety), oats)
L <- rbind(c(0, 0, 1, 0), c(0, 0, 0, 1))
ct <- contest(m, L, joint = TRUE)
cases$oats$contest_variety <- as.list(setNames(unname(unlist(ct[1, ])), anova_cols))

# Likelihood-ratio test between formula models (refitted with ML, as anova()
# does): is Variety needed?
m0 <- fit_in("lmer", yield ~ nitro + (1 | Block/Variety), oats)
lrt <- anova(m0, m)
cases$oats$lrt_without_variety <- list(
  npar = unname(lrt$npar), AIC = unname(lrt$AIC), BIC = unname(lrt$BIC),
  logLik = unname(lrt$logLik), deviance = unname(lrt$deviance),
  Chisq = unname(lrt$Chisq[2]), Df = unname(lrt$Df[2]),
  p_value = unname(lrt[["Pr(>Chisq)"]][2]))

# lm with a formula: coefficient names, table and the printed summary (whose
# Call line is R's for a call without data=, as skmixed.lm prints it).
lm_case <- function(formula, data) {
  m <- fit_in("lm", formula, data)
  s <- summary(m)
  cf <- coef(s)
  list(formula = paste(deparse(formula, width.cutoff = 500), collapse = ""),
       coef_names = names(coef(m)),
       coefficients = rows(cf, c("estimate", "std_error", "t_value", "p_value")),
       sigma = s$sigma, r_squared = s$r.squared,
       summary_text = capture.output(print(s)))
}
lm_cases <- list(
  oats = lm_case(yield ~ nitro + Variety, oats),
  cake = lm_case(angle ~ recipe * temperature, cake)
)

# Model matrices of R's model.matrix for formulas that exercise term order,
# interaction coding and transformations: column names, term labels, the
# term of each column (assign) and column sums / sums of squares.
mm_case <- function(rhs, data) {
  f <- as.formula(paste("~", rhs))
  X <- model.matrix(f, data)
  tt <- terms(f)
  list(rhs = rhs, colnames = I(colnames(X)), term_labels = I(attr(tt, "term.labels")),
       assign = I(attr(X, "assign")), col_sums = unname(colSums(X)),
       col_sumsq = unname(colSums(X^2)), first_row = unname(X[1, ]))
}
model_matrices <- list(
  mm_case("recipe * temperature", cake),
  mm_case("temp * recipe", cake),
  mm_case("recipe + temp:recipe", cake),
  mm_case("temp:recipe + recipe", cake),
  mm_case("recipe:temperature", cake),
  mm_case("0 + recipe + temp", cake),
  mm_case("recipe - 1", cake),
  mm_case("(recipe + temperature + temp)^2", cake),
  mm_case("I(temp^2) + log(temp) + scale(temp)", cake),
  mm_case("poly(temp, 2)", cake),
  mm_case("nitro * Variety", oats),
  mm_case("Variety * nitro", oats),
  mm_case("Variety:nitro", oats),
  mm_case("nitro + I(nitro^2) + Variety", oats)
)

write_json(list(software = paste(R.version.string, "lme4", packageVersion("lme4"),
                                 "lmerTest", packageVersion("lmerTest")),
                lmer = cases, lm = lm_cases, model_matrices = model_matrices),
           "formula_refs.json", digits = NA, auto_unbox = TRUE, na = "null",
           pretty = FALSE)
