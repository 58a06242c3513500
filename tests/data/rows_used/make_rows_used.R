# Which rows R learns a formula's state from (factor levels, scale(), poly())
# and checks glmer's response on, when rows have missing values (na.omit).
# Used by tests/test_rows_used.py. Run from this folder: Rscript make_rows_used.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(20261201)
n <- 60
g <- rep(paste0("g", 1:6), each = 10)
d <- data.frame(g = g, x = round(rnorm(n, 2, 1), 4), z = round(rnorm(n), 4),
                t = round(runif(n, 1, 5), 3), w = round(runif(n, 0.5, 2), 3))
u <- rnorm(6, 0, 0.7)[match(g, unique(g))]
d$y <- round(1 + 0.5 * d$x + u + rnorm(n, 0, 0.5), 4)
d$cnt <- rpois(n, exp(0.2 + 0.3 * d$x + log(d$t) + u / 2))
d$bin <- rbinom(n, 1, plogis(-0.5 + 0.4 * d$x + u))
# f: levels a, b on the rows kept; c only on the rows whose offset t is NA
d$f <- rep(c("a", "b"), n / 2)
d$f[7:8] <- "c"
# f1: one level (a) on the rows kept, b only where t is NA
d$f1 <- "a"
d$f1[7:8] <- "b"
# k: a grouping factor with a level (k9) only where t is NA
d$k <- rep(paste0("k", 1:5), 12)
d$k[7:8] <- "k9"
# responses whose only other values sit on rows dropped for a missing z (3:4)
# or a missing offset (7:8)
d$bz <- 0; d$bz[3:4] <- 1
d$bt <- 0; d$bt[7:8] <- 1
d$pz <- 2; d$pz[3:4] <- 5
# a factor response whose first level (a) sits only where z is NA
d$fr <- ifelse(d$bin == 1, "c", "b")
d$fr[3:4] <- "a"
# k3: a number whose value 3 sits only on a row missing y (row 1)
d$k3 <- ifelse(seq_len(n) %% 2 == 0, 1, 2)
d$k3[1] <- 3
# the missing values
d$y[1:2] <- NA; d$cnt[1:2] <- NA; d$bin[1:2] <- NA
d$z[3:4] <- NA
d$g[5] <- NA
d$w[6] <- NA
d$t[7:8] <- NA
write.csv(d, "rows_used.csv", row.names = FALSE, na = "")
msg <- function(e) tryCatch({eval(e); "fit"}, error = function(err) conditionMessage(err))
coefs <- function(m) as.list(if (inherits(m, "merMod")) fixef(m) else coef(m))
ff <- transform(d, f = factor(f), f1 = factor(f1), fr = factor(fr))
new <- data.frame(x = c(0, 1, 2.5, 4), z = c(-1, 0, 0.5, 1), t = c(1, 2, 3, 4),
                  g = "g1", f = "a")
out <- list()
# 1. the offset's missing rows are dropped before a factor's levels are taken
m <- lmer(y ~ x + f + (1 | g) + offset(log(t)), ff)
out$lmer_offset_term <- list(fixef = coefs(m), nobs = nobs(m))
m <- lmer(y ~ x + f + (1 | g), ff, offset = log(t))
out$lmer_offset_arg <- list(fixef = coefs(m), nobs = nobs(m))
m <- glmer(cnt ~ x + f + (1 | g) + offset(log(t)), ff, family = poisson)
out$glmer_offset_term <- list(fixef = coefs(m), nobs = nobs(m))
m <- glmer(bin ~ x + f + (1 | g), ff, family = binomial, offset = log(t))
out$glmer_offset_arg <- list(fixef = coefs(m), nobs = nobs(m))
out$lmer_offset_one_level <- msg(quote(lmer(y ~ x + f1 + (1 | g) + offset(log(t)), ff)))
out$glmer_offset_one_level <- msg(quote(glmer(cnt ~ x + f1 + (1 | g) + offset(log(t)),
                                              ff, family = poisson)))
m <- glmer(cnt ~ x + (1 | k) + offset(log(t)), d, family = poisson)
out$glmer_offset_group <- list(levels = rownames(ranef(m)$k), fixef = coefs(m))
m <- lmer(y ~ x + (1 | k), d, offset = log(t))
out$lmer_offset_group <- list(levels = rownames(ranef(m)$k), fixef = coefs(m))
# 2. glmer's checkResponse looks at the rows kept
out$glmer_binomial_z <- msg(quote(glmer(bz ~ z + (1 | g), d, family = binomial)))
out$glmer_binomial_x <- msg(quote(glmer(bz ~ x + (1 | g), d, family = binomial)))
out$glmer_binomial_t <- msg(quote(glmer(bt ~ x + (1 | g) + offset(log(t)), d,
                                        family = binomial)))
out$glmer_poisson_z <- msg(quote(glmer(pz ~ z + (1 | g), d, family = poisson)))
out$glmer_cbind_z <- msg(quote(glmer(cbind(pz, 6 - pz) ~ z + (1 | g), d,
                                     family = binomial)))
# a factor response: its first level among the rows kept is the failure
m <- glmer(fr ~ z + (1 | g), ff, family = binomial)
out$glmer_factor_first_dropped <- list(fixef = coefs(m), nobs = nobs(m))
# factor() of a number: its levels are those of the rows kept too
out$lm_factor_call_level_dropped <- coefs(lm(y ~ x + factor(k3), d))
m <- lm(y ~ x + factor(k3), d)
out$lm_factor_call_new_level <- msg(quote(predict(m, data.frame(x = 1, k3 = 3))))
# lmerTest's type III table of a factor(k3) model (the rows kept)
a <- anova(lmerTest::lmer(y ~ x * factor(k3) + (1 | g), d), type = 3)
out$lmer_type3_factor_call <- list(terms = rownames(a), F = a[["F value"]],
                                   DenDF = a[["DenDF"]])
# a factor response is binomial's only
out$glmer_poisson_factor <- msg(quote(glmer(fr ~ z + (1 | g), ff, family = poisson)))
# 3. scale() and poly(): R evaluates them on every row of data, then
# na.omit drops rows (so a row missing y or z still counts for x's scale)
scale_fit <- function(m) {
  list(coef = coefs(m), nobs = nobs(m), predict = unname(predict(m, new)))
}
out$lm_scale <- scale_fit(lm(y ~ scale(x) + z, d))
out$lm_scale_weights <- scale_fit(lm(y ~ scale(x) + z, d, weights = w))
out$lm_scale_nocentre <- scale_fit(lm(y ~ scale(x, center = FALSE) + z, d))
out$lm_scale_centre_only <- scale_fit(lm(y ~ scale(x, scale = FALSE) + z, d))
out$lm_poly <- scale_fit(lm(y ~ poly(x, 2) + z, d))
out$lm_poly_raw <- scale_fit(lm(y ~ poly(x, 2, raw = TRUE) + z, d))
out$lm_poly_missing <- msg(quote(lm(y ~ poly(z, 2) + x, d)))
# poly's degree is checked against the distinct values of every row
out$lm_poly_degree <- msg(quote(lm(y ~ poly(k3, 3) + x, d)))
out$lm_poly_degree_kept <- coefs(lm(y ~ poly(k3, 2) + x, d))
m <- lmer(y ~ scale(x) + z + (1 | g), d)
out$lmer_scale <- list(fixef = coefs(m), nobs = nobs(m),
                       predict = unname(predict(m, new, re.form = NA)))
m <- glmer(cnt ~ scale(x) + z + (1 | g) + offset(log(t)), d, family = poisson)
out$glmer_scale <- list(fixef = coefs(m), nobs = nobs(m),
                        predict = unname(predict(m, new, re.form = NA, type = "link")))
# the mean and sd R uses: of x where x is present, every row
out$scale_centre <- mean(d$x)
out$scale_sd <- sd(d$x)
out$scale_centre_rows_kept <- mean(d$x[complete.cases(d[, c("y", "x", "z")])])
out$software <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "rows_used.json")
