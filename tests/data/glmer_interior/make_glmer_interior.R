# Makes glmer_interior.json: random-intercept glmers whose optimum is inside
# the bounds but close to θ = 0, for tests/test_glmm_interior.py. Each fit
# once stopped at θ = 0.001 here (L-BFGS-B's first step was clipped to the
# bound, where the gradient vanishes by symmetry).
#   - sim*.csv: y ~ x + (1 | g), simulated (seeds 0 and 18 poisson, 7 and
#     31 binomial, columns y, x, g);
#   - sleepstudy counts: round(Reaction / 10) ~ Days + (1 | Subject), poisson.
#   - sim110.csv: y ~ x + (x | g), poisson, whose optimum is singular with a
#     rank-one covariance (intercept and slope perfectly correlated), which
#     probes along Λ's diagonal do not see from Λ = 0;
#   - sim102.csv: the same model, singular with Λ11 near 0 and Λ21 < 0; the
#     fit once ended at the mirror image (Λ11 = 0, Λ21 > 0).
# Run from tests/data/glmer_interior:  Rscript make_glmer_interior.R
# Numbers are exact doubles (jsonlite digits = NA).
suppressMessages({
  library(jsonlite)
  library(lme4)
})
fit_case <- function(formula, data, family) {
  m <- glmer(formula, data, family = family)
  list(
    family = family,
    formula = deparse(formula),
    theta = unname(getME(m, "theta")),
    beta = unname(fixef(m)),
    loglik = as.numeric(logLik(m)),
    warnings = m@optinfo$conv$lme4$messages
  )
}
out <- list()
for (s in c(0, 7, 18, 31)) {
  d <- read.csv(sprintf("sim%d.csv", s))
  d$g <- factor(d$g)
  family <- if (s %in% c(0, 18)) "poisson" else "binomial"
  out[[sprintf("sim%d", s)]] <- c(list(data_file = sprintf("sim%d.csv", s)),
                                  fit_case(y ~ x + (1 | g), d, family))
}
for (s in c(110, 102)) {
  d <- read.csv(sprintf("sim%d.csv", s))
  d$g <- factor(d$g)
  out[[sprintf("sim%d", s)]] <- c(list(data_file = sprintf("sim%d.csv", s)),
                                  fit_case(y ~ x + (x | g), d, "poisson"))
}
sleep <- read.csv("../../../skmixed/datasets/data/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject, levels = as.character(sort(unique(sleep$Subject))))
sleep$count <- round(sleep$Reaction / 10)
out[["sleepstudy_counts"]] <- c(list(data_file = "sleepstudy"),
                                fit_case(count ~ Days + (1 | Subject), sleep, "poisson"))
out[["software"]] <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "glmer_interior.json")
