# lme4's own deviance function, at the public reference estimates, with PIRLS converged
# tightly (tolPwrss = 1e-12 instead of 1e-7): lme4's conditional modes where its default PIRLS
# stopped early. Run from the repository root after glmer_tight_refits.R:
#   Rscript tools/r/glmer_pirls_at_reference.R
# Writes tests/fixtures/lme4_tight/<id>_pirls.json (lme4 1.1-31 on R 4.2, Debian packages).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
source("tools/r/datasets.R")
ids <- c("cbpp_binomial_laplace", "cbpp_binomial_agq25", "cbpp_binomial_probit",
         "cbpp_poisson_offset", "arabidopsis_poisson", "sleepstudy_gamma_log",
         "arabidopsis_negbin", "insteval_binary")
families <- list(cbpp_binomial_laplace = binomial(), cbpp_binomial_agq25 = binomial(),
                 cbpp_binomial_probit = binomial(link = "probit"), cbpp_poisson_offset = poisson(),
                 arabidopsis_poisson = poisson(), sleepstudy_gamma_log = Gamma(link = "log"),
                 insteval_binary = binomial())
for (id in ids) {
  ref <- fromJSON(file.path("tests/fixtures/lme4", paste0(id, ".json")))
  d <- load_data(ref$dataset)
  fam <- if (id == "arabidopsis_negbin") MASS::negative.binomial(theta = ref$nb_theta) else families[[id]]
  out <- list(id = id, tolPwrss = 1e-12)
  for (tol in c(1e-7, 1e-12)) {
    devfun <- glmer(as.formula(ref$formula), data = d, family = fam, nAGQ = ref$nAGQ,
                    devFunOnly = TRUE, control = glmerControl(tolPwrss = tol))
    value <- devfun(c(unlist(ref$theta), unlist(ref$fixef)))
    if (tol == 1e-12) {
      out$deviance_at_reference <- value
      out$b <- environment(devfun)$pp$b(1)
    } else {
      out$deviance_at_reference_default_pirls <- value
    }
  }
  write_json(out, file.path("tests/fixtures/lme4_tight", paste0(id, "_pirls.json")),
             auto_unbox = TRUE, digits = 15, pretty = FALSE)
  cat(id, out$deviance_at_reference_default_pirls, out$deviance_at_reference, "\n")
}
