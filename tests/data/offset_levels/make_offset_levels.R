# Levels of rows that na.omit drops are no levels (tests/test_dask_inputs.py):
# a factor level whose rows all miss the offset (R's model frame holds the
# offset), and a value of factor(k) only on rows missing y.
# Run from this folder: Rscript make_offset_levels.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(20261201)
n <- 120
d <- data.frame(x = round(rnorm(n), 4),
                f = rep(c("a", "b", "c", "d"), 30),
                g = rep(paste0("s", 1:12), each = 10),
                o = round(rnorm(n, 0, 0.5), 4))
d$y <- round(1 + 0.5 * d$x + rnorm(12)[match(d$g, unique(d$g))] +
             rnorm(n, 0, 0.7), 4)
d$o[d$f == "a"] <- NA  # level a: only on rows that na.omit drops
write.csv(d, "offset_levels.csv", row.names = FALSE, na = "")
m <- lmer(y ~ x + f + offset(o) + (1 | g), d, na.action = na.omit)
d2 <- d[c("x", "g", "y")]
d2$k <- rep(1:3, 40)
d2$y[d2$k == 3] <- NA
write.csv(d2, "factor_call_levels.csv", row.names = FALSE, na = "")
l <- lm(y ~ x + factor(k), d2)
out <- list(lmer_fixef = as.list(fixef(m)), lm_factor_call = as.list(coef(l)),
            software = list(R = R.version.string,
                            lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "offset_levels.json")
