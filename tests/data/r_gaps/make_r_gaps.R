# R's behaviour for the gaps closed on branch rgaps (tests/test_r_gaps.py).
# Run from this folder: Rscript make_r_gaps.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(20261130)
n <- 48
d <- data.frame(x = round(rnorm(n), 4),
                g = rep(c(1e5, 2e5, 3e5, 4e5, 1.5e5, 2.5e-5), each = 8),
                f = rep(c(1e5, 2e5, 0.1 + 0.2), 16),
                b = rep(c(TRUE, FALSE, TRUE, FALSE, FALSE, TRUE), 8),
                h = c(rep("u", n - 2), "v", "v"),
                one = 1)
d$y <- round(1 + 0.5 * d$x + rnorm(6, 0, 1)[match(d$g, unique(d$g))] +
             rnorm(n, 0, 0.5), 4)
# the rows of level "v": one misses x, the other y (na.omit drops both)
d$x[n - 1] <- NA
d$y[n] <- NA
write.csv(d, "r_gaps.csv", row.names = FALSE, na = "")
msg <- function(e) tryCatch({eval(e); "fit"}, error = function(err) conditionMessage(err))
hf <- transform(d, h = factor(h))
coefs <- function(m) as.list(coef(m))
m_g <- lmer(y ~ x + (1 | g), d)
out <- list(
  # 1. a factor with one level among the complete rows
  lm_text_one_used = msg(quote(lm(y ~ x + h, d))),
  lm_factor_one_used = msg(quote(lm(y ~ x + h, hf))),
  lmer_factor_one_used = msg(quote(lmer(y ~ x + h + (1 | g), hf))),
  lmer_factor_slope_missing = msg(quote(lmer(y ~ x + h + (z | g), within(d, {
    x[h == "v"] <- 0.5; y[h == "v"] <- 0.5; z <- ifelse(h == "v", NA, x)})))),
  # 2. factor() / C() of a one-valued column
  lm_factor_call_one = msg(quote(lm(y ~ x + factor(one), d))),
  lm_factor_call_one_used = msg(quote(lm(y ~ x + factor(h), d))),
  # 4. a numeric grouping column: factor levels are as.character's
  ranef_levels = rownames(ranef(m_g)$g),
  ranef = unname(ranef(m_g)$g[, 1]),
  lmer_fixef = as.list(fixef(m_g)),
  # 5. ! in formula terms
  lm_I_not = coefs(lm(y ~ x + I(!b), d)),
  lm_ifelse_not = coefs(lm(y ~ x + ifelse(!b, 1, 0), d)),
  lm_top_not = coefs(lm(y ~ x + !b, d)),
  lm_top_not_bracket = coefs(lm(y ~ x + (!b), d)),
  lm_ifelse_logical = coefs(lm(y ~ x + ifelse(b, 1, 0), d)),
  lm_and_logical = coefs(lm(y ~ x + I(b & x > 0), d)),
  lm_not_bracket_first = coefs(lm(y ~ (!b) + x, d)),
  lm_logical_times = coefs(lm(y ~ x + I(b * 2), d)),
  lm_logical_equals = coefs(lm(y ~ x + I(b == TRUE), d)),
  lm_logical_minus = coefs(lm(y ~ x + I(1 - b), d)),
  lm_logical_interaction = coefs(lm(y ~ b * x, d)),
  terms_not_then_plus = attr(terms(y ~ x + !b + one), "term.labels"),
  # 6. factor() of a double: level names are as.character's
  lm_factor_double = coefs(lm(y ~ x + factor(f), d)),
  # 0.1 + 0.2 and 0.3 are one level "0.3" (as.character's 15 digits)
  lm_factor_double_merged = coefs(lm(y ~ x + factor(f3),
                                     transform(d, f3 = rep(c(0.1 + 0.2, 0.3, 1), 16))))
)
# a level only on a row that na.omit drops is no level (no coefficient)
d3 <- d
d3$h[is.na(d3$y)] <- "w"
d3$h[1:11] <- "v"
out$lm_level_on_dropped_row <- coefs(lm(y ~ x + h, d3))
# 3. glmer refuses a constant response (lme4's checkResponse)
d$yes <- factor(rep("yes", n))
d$yes2 <- factor(rep("yes", n), levels = c("no", "yes"))
d$zero <- 0
out$glmer_factor_one_level <- msg(quote(glmer(yes ~ x + (1 | g), d, family = binomial)))
out$glmer_factor_one_used <- msg(quote(glmer(yes2 ~ x + (1 | g), d, family = binomial)))
out$glmer_all_zero <- msg(quote(glmer(zero ~ x + (1 | g), d, family = binomial)))
d$s <- 2; d$n <- 5
out$glmer_cbind_constant <- msg(quote(glmer(cbind(s, n - s) ~ x + (1 | g), d, family = binomial)))
out$glmer_poisson_zero <- msg(quote(glmer(zero ~ x + (1 | g), d, family = poisson)))
out$software <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "r_gaps.json")
