# A factor level whose rows all miss the offset: R's model frame holds the
# offset, so na.omit drops those rows before the unused level is dropped
# (tests/test_dask_inputs.py). Run from this folder: Rscript make_offset_levels.R
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
out <- list(lmer_fixef = as.list(fixef(m)),
            software = list(R = R.version.string,
                            lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "offset_levels.json")
