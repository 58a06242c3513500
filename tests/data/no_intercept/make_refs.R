# Makes no_intercept.json: lme4 fits (with lmerTest's Satterthwaite df) of no-intercept models (y ~ 0 + x + ...)
# whose response is moved away from 0 by an offset (0, 1e4, 1e6, 1e8) that
# no fixed intercept can absorb: the random intercepts take it (θ grows with
# the offset). Data: no_intercept.csv (make_no_intercept_data.py). lme4 forms the
# residuals from the rows, so its criterion keeps its digits at every offset.
# Tight optimiser tolerances; and "polished": lme4's own criterion
# (devFunOnly) minimised again from lme4's θ by BOBYQA in t = asinh(θ), whose
# steps are relative for large θ (at offsets 1e6 and 1e8 lme4's optimiser
# stops short: its θ ~1e-4 off and σ 2e-5 off their offset-free values),
# with σ, β and their standard errors from lme4's state at that θ.
# Run from tests/data/no_intercept:  Rscript make_refs.R
suppressPackageStartupMessages(library(lmerTest))  # lme4, with Satterthwaite df
library(jsonlite)
d <- read.csv("no_intercept.csv")
ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(xtol_rel = 1e-13, ftol_rel = 1e-15,
                                   ftol_abs = 0, xtol_abs = 0, maxeval = 1e5),
                    check.conv.singular = "ignore")
models <- list(
  int = list(formula = y ~ 0 + x + (1 | g), response = "y0", weights = FALSE),
  slope = list(formula = y ~ 0 + x + (1 + x | g), response = "ys", weights = FALSE),
  crossed = list(formula = y ~ 0 + x + (1 | g) + (1 | h), response = "yh",
                 weights = FALSE),
  weighted = list(formula = y ~ 0 + x + (1 | g), response = "y0", weights = TRUE)
)
offsets <- c(0, 1e4, 1e6, 1e8)
polish <- function(m, reml) {
  devfun <- update(m, devFunOnly = TRUE)
  lower <- getME(m, "lower")
  opt <- nloptr::nloptr(asinh(getME(m, "theta")), function(t) devfun(sinh(t)),
                        lb = asinh(lower),
                        opts = list(algorithm = "NLOPT_LN_BOBYQA", xtol_rel = 1e-15,
                                    ftol_rel = 0, ftol_abs = 0, maxeval = 1e5))
  theta <- sinh(opt$solution)
  criterion <- devfun(theta)
  pp <- environment(devfun)$pp
  resp <- environment(devfun)$resp
  n <- length(resp$y)
  p <- ncol(pp$X)
  sigma <- sqrt((resp$wrss() + pp$sqrL(1)) / (if (reml) n - p else n))
  list(criterion = criterion, theta = theta, fixef = pp$beta(1),
       se = sqrt(diag(sigma^2 * chol2inv(pp$RX()))), sigma = sigma)
}
out <- list()
for (name in names(models)) {
  spec <- models[[name]]
  for (offset in offsets) {
    for (reml in c(TRUE, FALSE)) {
      d$y <- d[[spec$response]] + offset
      m <- if (spec$weights) {
        lmer(spec$formula, d, REML = reml, control = ctrl, weights = w)
      } else {
        lmer(spec$formula, d, REML = reml, control = ctrl)
      }
      key <- sprintf("%s_%s_%s", name, format(offset, scientific = TRUE),
                     if (reml) "reml" else "ml")
      out[[key]] <- list(
        model = name, response = spec$response, weights = spec$weights,
        offset = offset, reml = reml,
        criterion = if (reml) REMLcrit(m) else deviance(m),
        theta = unname(getME(m, "theta")),
        fixef = unname(fixef(m)),
        se = unname(sqrt(diag(as.matrix(vcov(m))))),
        sigma = sigma(m),
        df = unname(coef(summary(m))[, "df"]),
        messages = as.list(m@optinfo$conv$lme4$messages),
        polished = polish(m, reml)
      )
      if (reml && name %in% c("int", "crossed") && offset <= 1e6) {
        # (lme4's profile fails on some: "Error in zeta(shiftpar, ...)")
        ci <- tryCatch(suppressMessages(confint(m, method = "profile")),
                       error = function(e) NULL)
        if (!is.null(ci)) {
          out[[key]]$confint_profile <- list(parm = rownames(ci),
                                             lower = unname(ci[, 1]),
                                             upper = unname(ci[, 2]))
        }
      }
    }
  }
}
# no fixed effect at all (y ~ 0 + (1 | g)), plain fits: lme4's REML
# criterion is then 1.0 above the exact one (make_exact.py) in some runs of
# this script and not in others, at offsets 0 and 1e4 alike: the tests
# compare its θ and σ only
for (offset in c(0, 1e4)) {
  d$y <- d$y0 + offset
  m <- lmer(y ~ 0 + (1 | g), d, control = ctrl)
  out[[sprintf("none_%s_reml", format(offset, scientific = TRUE))]] <- list(
    model = "none", response = "y0", weights = FALSE, offset = offset,
    reml = TRUE, criterion = REMLcrit(m), theta = unname(getME(m, "theta")),
    sigma = sigma(m)
  )
}
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "no_intercept.json")
