# R's warnings for non-integer binomial counts, for
# tests/test_binomial_counts.py: cbind(s, f) with fractional counts,
# a proportion whose weights * y is fractional, and fractional weights on
# 0/1 y. Run from this folder:  Rscript make_binomial_counts.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(20261130)
G <- 12
d <- data.frame(g = sprintf("g%02d", rep(1:G, each = 8)))
d$x <- round(rnorm(nrow(d)), 4)
d$n <- sample(2:9, nrow(d), replace = TRUE)
d$s <- rbinom(nrow(d), d$n, plogis(-0.2 + 0.6 * d$x + rnorm(G, 0, 0.7)[rep(1:G, each = 8)]))
d$s_half <- d$s + ifelse(seq_len(nrow(d)) %% 10 == 0 & d$s < d$n, 0.5, 0)
d$p_half <- d$s_half / d$n
d$y01 <- as.integer(d$s > d$n / 2)
d$w_half <- 1 + (seq_len(nrow(d)) %% 3) / 2
write.csv(d, "binomial_counts.csv", row.names = FALSE)

warnings_of <- function(expr) {
  said <- character()
  withCallingHandlers(expr, warning = function(w) {
    said <<- c(said, conditionMessage(w)); invokeRestart("muffleWarning")
  })
  unique(said)
}
ctl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12, optCtrl = list(rhoend = 1e-9))
out <- list(
  glmer_cbind = warnings_of(glmer(cbind(s_half, n - s_half) ~ x + (1 | g), d, binomial, control = ctl)),
  glmer_proportion_weights = warnings_of(glmer(p_half ~ x + (1 | g), d, binomial, weights = n, control = ctl)),
  glmer_01_fractional_weights = warnings_of(glmer(y01 ~ x + (1 | g), d, binomial, weights = w_half, control = ctl)),
  glm_cbind = warnings_of(glm(cbind(s_half, n - s_half) ~ x, binomial, d)),
  glm_proportion_weights = warnings_of(glm(p_half ~ x, binomial, d, weights = n)),
  software = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
)
writeLines(toJSON(out, auto_unbox = FALSE, digits = NA, pretty = TRUE), "binomial_counts.json")
