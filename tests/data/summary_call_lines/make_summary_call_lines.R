# When summary(glmer) prints its "Weights:" and " Offset:" lines, for
# tests/test_summary_call_lines.py: the header of the summary for each way of
# giving binomial trials, prior weights and offsets (and lmer's, through
# lmerTest, for its offset= argument). Run from this folder:
#   Rscript make_summary_call_lines.R
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(jsonlite)})
set.seed(20261130)
G <- 15
d <- data.frame(g = sprintf("g%02d", rep(1:G, each = 8)))
n_rows <- nrow(d)
d$x <- round(rnorm(n_rows), 4)
d$n <- sample(2:9, n_rows, replace = TRUE)
d$s <- rbinom(n_rows, d$n, plogis(-0.2 + 0.6 * d$x + rnorm(G, 0, 0.7)[rep(1:G, each = 8)]))
d$p <- d$s / d$n
d$w <- sample(1:3, n_rows, replace = TRUE)
d$count <- rpois(n_rows, exp(0.3 + 0.4 * d$x))
d$e <- round(runif(n_rows, 0.5, 3), 3)
write.csv(d, "weights_line.csv", row.names = FALSE)

header <- function(m) {
  lines <- capture.output(print(summary(m)))
  # the lines before the criteria table ("     AIC      BIC ...")
  lines[seq_len(which(grepl("^ +AIC", lines))[1] - 1)]
}
# tight PIRLS (lme4's default tolPwrss = 1e-7 moves its deviance by ~3e-4)
ctl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12, optCtrl = list(rhoend = 1e-9))
fits <- list(
  cbind = glmer(cbind(s, n - s) ~ x + (1 | g), d, binomial, control = ctl),
  proportion_weights = glmer(p ~ x + (1 | g), d, binomial, weights = n, control = ctl),
  cbind_weights = glmer(cbind(s, n - s) ~ x + (1 | g), d, binomial, weights = w, control = ctl),
  poisson_weights = glmer(count ~ x + (1 | g), d, poisson, weights = w, control = ctl),
  poisson_offset_arg = glmer(count ~ x + (1 | g), d, poisson, offset = log(e), control = ctl),
  poisson_offset_term = glmer(count ~ x + (1 | g) + offset(log(e)), d, poisson, control = ctl),
  poisson_weights_vector = glmer(count ~ x + (1 | g), d, poisson, weights = d$w, control = ctl)
)
d$yc <- round(d$x + log(d$e) + rnorm(G)[rep(1:G, each = 8)] + rnorm(n_rows), 4)
write.csv(d, "weights_line.csv", row.names = FALSE)
fits$lmer_offset_arg <- lmer(yc ~ x + (1 | g), d, offset = log(e))
fits$lmer_offset_term <- lmer(yc ~ x + (1 | g) + offset(log(e)), d)
header <- function(m) {
  lines <- capture.output(print(summary(m)))
  # the lines before the criteria ("     AIC ..." or "REML criterion ...")
  lines[seq_len(which(grepl("^ +AIC|^REML criterion", lines))[1] - 1)]
}
out <- lapply(fits, function(m) list(header = header(m), logLik = as.numeric(logLik(m)),
                                       fixef = as.list(fixef(m))))
out$software <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "weights_line.json")
