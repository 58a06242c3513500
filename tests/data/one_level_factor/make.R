# A one-level factor (or character) column in the fixed part: R's lm and lmer
# refuse it; a logical column of one value is fitted (an aliased, NA column).
library(lme4); library(jsonlite)
d <- data.frame(x = c(0.3, -1.2, 0.8, 1.9, -0.4, 0.1, -0.7, 1.1),
                g = factor(rep(1:4, 2)), f = factor(rep("a", 8)), h = rep("a", 8))
d$y <- d$x + c(0.2, -0.1, 0.4, -0.3, 0.05, 0.1, -0.2, 0.3)
msg <- function(e) tryCatch({eval(e); "fit"}, error = function(err) conditionMessage(err))
out <- list(lm_factor = msg(quote(lm(y ~ x + f, d))),
            lm_character = msg(quote(lm(y ~ x + h, d))),
            lm_no_intercept = msg(quote(lm(y ~ 0 + x + f, d))),
            lmer_factor = msg(quote(lmer(y ~ x + f + (1 | g), d))),
            lm_logical = msg(quote(lm(y ~ x + I(x > 100), d))),
            lm_logical_coef = unname(coef(lm(y ~ x + I(x > 100), d))[3]))
write.csv(d, "data.csv", row.names = FALSE)
write_json(out, "r.json", auto_unbox = TRUE, na = "string")
