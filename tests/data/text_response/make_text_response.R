# What R does with a response given as text (character), a factor or a
# logical, for tests/test_text_response.py. Run from this folder:
#   Rscript make_text_response.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(20261130)
n <- 160
g <- sprintf("g%02d", sample(1:12, n, replace = TRUE))
x <- round(rnorm(n), 4)
b <- rnorm(12, 0, 0.8)
eta <- -0.3 + 0.8 * x + b[match(g, sprintf("g%02d", 1:12))]
yes <- as.integer(runif(n) < plogis(eta))
count <- rpois(n, exp(0.2 + 0.4 * x))
d <- data.frame(g = g, x = x, yes = yes, answer = ifelse(yes == 1, "yes", "no"),
                count = count)
write.csv(d, "text_response.csv", row.names = FALSE)

outcome <- function(expr) {
  tryCatch({
    m <- expr
    list(status = "ok", fixef = as.list(fixef(m)))
  }, error = function(e) list(status = "error", message = conditionMessage(e)))
}
dc <- d
dc$yes <- as.character(d$yes)      # "0"/"1": numbers stored as text
dc$count <- as.character(d$count)
# lme4's default PIRLS tolerance (tolPwrss = 1e-7) moves its Laplace
# deviance by ~5e-4 on these data (its devfun at fixed parameters matches
# skmixed's to 1e-9 with tolPwrss = 1e-12), so the fits are made tight.
ctl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12, optCtrl = list(rhoend = 1e-9))
res <- list(
  glmer_binomial_character_01 = outcome(glmer(yes ~ x + (1 | g), dc, binomial, control = ctl)),
  glmer_binomial_character_words = outcome(glmer(answer ~ x + (1 | g), d, binomial, control = ctl)),
  glmer_binomial_factor_words = outcome(glmer(factor(answer) ~ x + (1 | g), d, binomial, control = ctl)),
  glmer_binomial_logical = outcome(glmer(I(answer == "yes") ~ x + (1 | g), d, binomial, control = ctl)),
  glmer_binomial_numeric = outcome(glmer(yes ~ x + (1 | g), d, binomial, control = ctl)),
  glmer_binomial_cbind_character = outcome(glmer(cbind(yes, count) ~ x + (1 | g), dc, binomial, control = ctl)),
  glmer_poisson_character = outcome(glmer(count ~ x + (1 | g), dc, poisson, control = ctl)),
  lmer_character = outcome(lmer(count ~ x + (1 | g), dc)),
  lm_character = tryCatch(list(status = "ok", coef = as.list(coef(lm(count ~ x, dc)))),
                          error = function(e) list(status = "error", message = conditionMessage(e))),
  software = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE), "text_response.json")
