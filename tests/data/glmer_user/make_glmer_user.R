# References for tests/test_glmm_user.py: glmer on two small simulated data
# sets, as a user would fit them. Run from this folder:
#   Rscript make_glmer_user.R
suppressPackageStartupMessages({library(lme4); library(jsonlite); library(performance)})
set.seed(20261130)

# 1. Binomial proportions (cbind) with a correlated random slope
G <- 40
g <- rep(sprintf("g%02d", 1:G), times = sample(4:10, G, replace = TRUE))
n <- length(g)
gi <- match(g, sprintf("g%02d", 1:G))
x <- rnorm(n); z <- rnorm(n)
b0 <- rnorm(G, 0, 0.8); b1 <- 0.5 * b0 + rnorm(G, 0, 0.4)
trials <- sample(1:8, n, replace = TRUE)
eta <- -0.4 + 0.7 * x - 0.3 * z + b0[gi] + b1[gi] * x
s <- rbinom(n, trials, plogis(eta))
prop <- data.frame(g = g, x = round(x, 4), z = round(z, 4), s = s, n = trials)
write.csv(prop, "proportions.csv", row.names = FALSE)

# 2. Poisson counts, crossed grouping factors, an offset and prior weights
A <- 25; B <- 12
cnt <- expand.grid(a = sprintf("a%02d", 1:A), b = sprintf("b%02d", 1:B))
cnt <- cnt[sample(nrow(cnt), 220), ]
ua <- rnorm(A, 0, 0.5); ub <- rnorm(B, 0, 0.3)
cnt$x <- round(rnorm(nrow(cnt)), 4)
cnt$t <- round(runif(nrow(cnt), 0.5, 4), 3)
cnt$w <- sample(1:3, nrow(cnt), replace = TRUE)
mu <- cnt$t * exp(0.3 + 0.4 * cnt$x + ua[as.integer(cnt$a)] + ub[as.integer(cnt$b)])
cnt$y <- rpois(nrow(cnt), mu)
cnt$a <- as.character(cnt$a); cnt$b <- as.character(cnt$b)
write.csv(cnt, "counts.csv", row.names = FALSE)

newdata_prop <- data.frame(g = c("g01", "g02", "g17", "new"), x = c(-1, 0.5, 1.2, 0.3),
                           z = c(0.2, -0.4, 1, 0))
newdata_cnt <- data.frame(a = c("a01", "a05", "new", "a10"), b = c("b01", "new", "b03", "b12"),
                          x = c(0.1, -0.5, 1, 2), t = c(1, 2, 0.5, 3))
write.csv(newdata_prop, "newdata_proportions.csv", row.names = FALSE)
write.csv(newdata_cnt, "newdata_counts.csv", row.names = FALSE)

tight <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
summarise <- function(m, newdata) {
  vc <- as.data.frame(VarCorr(m))
  re <- ranef(m, condVar = TRUE)
  modes <- lapply(names(re), function(f) {
    r <- re[[f]]; pv <- attr(r, "postVar")
    list(levels = rownames(r), values = unname(as.matrix(r)),
         sd = t(sapply(seq_len(nrow(r)), function(i) sqrt(diag(as.matrix(pv[, , i])))))) })
  names(modes) <- names(re)
  list(formula = deparse(formula(m)), nAGQ = m@devcomp$dims[["nAGQ"]],
       logLik = as.numeric(logLik(m)), deviance = deviance(m),
       AIC = AIC(m), fixef = as.list(fixef(m)), theta = unname(getME(m, "theta")),
       varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, sdcor = vc$sdcor),
       se = as.list(sqrt(diag(as.matrix(vcov(m))))),
       se_rx = as.list(sqrt(diag(as.matrix(vcov(m, use.hessian = FALSE))))),
       fitted_head = unname(head(fitted(m), 10)),
       ranef = modes,
       predict_response = unname(predict(m, newdata, type = "response", allow.new.levels = TRUE)),
       predict_link = unname(predict(m, newdata, type = "link", allow.new.levels = TRUE)),
       predict_population = unname(predict(m, newdata, type = "response", re.form = NA)),
       r2_nakagawa = suppressWarnings(unlist(unname(r2_nakagawa(m)))),
       icc = suppressWarnings(unlist(icc(m))[c("ICC_adjusted", "ICC_conditional")]),
       warnings = m@optinfo$conv$lme4$messages)
}
out <- list()
out$prop_slope <- summarise(glmer(cbind(s, n - s) ~ x + z + (x | g), prop, binomial,
                                  control = tight), newdata_prop)
out$prop_agq <- summarise(glmer(cbind(s, n - s) ~ x + z + (1 | g), prop, binomial,
                                nAGQ = 9, control = tight), newdata_prop)
out$count_crossed <- summarise(glmer(y ~ x + (1 | a) + (1 | b) + offset(log(t)), cnt,
                                     poisson, weights = w, control = tight), newdata_cnt)
out$software <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
write_json(out, "glmer_user.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
