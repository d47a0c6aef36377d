# Bundled datasets as R data frames, with the factor levels (and their order) that the
# Python package uses. Sourced by the fixture and check scripts, run from the repository
# root: source("tools/r/datasets.R"); d <- load_data("sleepstudy")
suppressPackageStartupMessages(library(jsonlite))
data_dir <- "src/mixedmodels/datasets/data"
levels_json <- fromJSON(file.path(data_dir, "factor_levels.json"), simplifyVector = FALSE)
load_data <- function(name) {
  d <- read.csv(gzfile(file.path(data_dir, paste0(name, ".csv.gz"))), stringsAsFactors = FALSE,
                check.names = FALSE)
  for (col in names(levels_json[[name]])) {
    spec <- levels_json[[name]][[col]]
    d[[col]] <- factor(as.character(d[[col]]), levels = unlist(spec$levels),
                       ordered = isTRUE(spec$ordered))
  }
  d
}
