"""Search: Chinese text analysis, the keyword and vector indexes, and their fusion."""
