# Makes r_format_cases.json: R's own output of format(), format.pval() and
# printCoefmat() on varied numbers, to test skmixed/_format.py against.
# Run from tests/data:  Rscript make_r_format_cases.R   (R 4.2.2 was used)
# Inputs are rounded to 12 significant digits first so that jsonlite's 15
# digits give back R's exact doubles.
library(jsonlite)
set.seed(20261126)
vec_cases <- list()
for (k in 1:150) {
  n <- sample(1:6, 1)
  mag <- sample(-8:8, n, replace = TRUE)
  x <- signif(rnorm(n) * 10^mag, sample(2:9, 1))
  if (runif(1) < 0.2) x[1] <- 0
  if (runif(1) < 0.1) x[n] <- round(x[n])
  d <- sample(1:8, 1)
  vec_cases[[k]] <- list(x = x, digits = d, out = format(x, digits = d))
}
special <- list(c(9996, 1), c(99.96), c(9.996, 0.5), c(0.15, 0.25), c(1e-300, 1),
                c(123456789, 0.001), c(-0.5, 0.5), c(1e5, 2e5), c(1e15, 1), c(0.1 + 0.2))
for (x in special) for (d in c(1, 3, 4, 7))
  vec_cases[[length(vec_cases) + 1]] <- list(x = x, digits = d, out = format(x, digits = d))
pval_cases <- list()
for (k in 1:80) {
  n <- sample(1:8, 1)
  p <- 10^(-runif(n, 0, 20))
  if (runif(1) < 0.3) p[1] <- 10^(-runif(1, 16, 90))
  p <- signif(p, 12)
  d <- sample(1:5, 1)
  pval_cases[[k]] <- list(p = p, digits = d, out = format.pval(p, digits = d))
}
coef_cases <- list()
for (k in 1:60) {
  n <- sample(1:8, 1)
  est <- rnorm(n) * 10^sample(-5:5, 1) * 10^runif(n, -2, 2)
  se <- abs(est) * 10^runif(n, -3, 1)
  tv <- est / se
  df <- if (k %% 3 == 0) runif(n, 2, 300) else NULL
  pv <- 2 * pt(abs(tv), if (is.null(df)) 100 else df, lower.tail = FALSE)
  if (is.null(df)) {
    m <- cbind(Estimate = est, "Std. Error" = se, "t value" = tv, "Pr(>|t|)" = pv)
    if (k %% 5 == 0 && n > 1) m[2, ] <- NA
  } else {
    m <- cbind(Estimate = est, "Std. Error" = se, df = df, "t value" = tv, "Pr(>|t|)" = pv)
  }
  m <- signif(m, 12)
  rownames(m) <- paste0("term", seq_len(n))
  out <- capture.output(if (is.null(df)) printCoefmat(m, digits = 4, na.print = "NA")
                        else printCoefmat(m, digits = 4, tst.ind = 4, cs.ind = 1:2))
  coef_cases[[k]] <- list(values = unname(m), colnames = colnames(m),
                          rownames = rownames(m), has_df = !is.null(df), out = out)
}
write_json(list(format = vec_cases, format_pval = pval_cases, coefmat = coef_cases),
           "r_format_cases.json", digits = NA, auto_unbox = FALSE, na = "null")
