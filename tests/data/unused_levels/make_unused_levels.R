# R drops a factor's unused levels when it builds the model frame
# (model.frame's drop.unused.levels = TRUE in lm and lmer): unused_levels.csv is a
# subset without any row of level "c" of a factor declared with a, b, c.
suppressMessages(library(lme4))
d <- read.csv("unused_levels.csv")
d$f <- factor(d$f, levels = c("a", "b", "c"))
d$g <- factor(d$g)
m_lm <- lm(y ~ x + f, d)
m_lmer <- lmer(y ~ x + f + (1 | g), d)
out <- list(
  lm_coef = as.list(coef(m_lm)),
  lmer_fixef = as.list(fixef(m_lmer)),
  lmer_reml = REMLcrit(m_lmer),
  lm_predict_c = tryCatch(predict(m_lm, data.frame(x = 1, f = factor("c", levels = c("a", "b", "c")))),
                          error = function(e) conditionMessage(e))
)
jsonlite::write_json(out, "unused_levels.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
