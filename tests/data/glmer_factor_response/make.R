# glmer with a 3-level factor response: first level = failure, others = success.
library(lme4); library(jsonlite)
set.seed(7)
n <- 120; g <- rep(1:12, each = 10); x <- round(rnorm(n), 3)
b <- rnorm(12, sd = 0.8)[g]
p <- plogis(0.3 + 0.9 * x + b)
u <- runif(n)
lev <- ifelse(u > p, "a", ifelse(u > p / 2, "b", "c"))
d <- data.frame(y = factor(lev, levels = c("a", "b", "c")), x = x, g = factor(g))
# glmer's default PIRLS tolerance (tolPwrss = 1e-7) stops 1.4e-4 short in
# logLik here (-73.81830); tightened, it reaches the optimum (-73.8181639).
m_default <- glmer(y ~ x + (1 | g), d, family = binomial)
m <- glmer(y ~ x + (1 | g), d, family = binomial,
           control = glmerControl(tolPwrss = 1e-12))
chr <- tryCatch({glmer(y ~ x + (1 | g), transform(d, y = as.character(y)), family = binomial); "fit"},
                error = function(e) conditionMessage(e))
write.csv(d, "data.csv", row.names = FALSE)
write_json(list(logLik = as.numeric(logLik(m)),
                logLik_default_control = as.numeric(logLik(m_default)), fixef = unname(fixef(m)),
                theta = unname(getME(m, "theta")), character_response = chr),
           "glmer.json", digits = NA, auto_unbox = TRUE)
