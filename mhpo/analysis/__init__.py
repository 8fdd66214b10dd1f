"""Analysis of finished runs: training signals, tables, the main aggregate, the stability study, figures and the
objective atlas."""
