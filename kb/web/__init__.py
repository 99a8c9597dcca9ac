"""Web plumbing: templating, rendering of numbers and Markdown, security headers and limits."""
