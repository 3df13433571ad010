"""Statistics (统计分析) of the cases for coordinators and the admin: the queries
(queries.py from the summaries server/cases/counts.py keeps, direct.py from the cases
where they cannot answer; terms.py what both share), periods in the installation's zone
(periods.py), the region drill-down (regions.py), the exports (export.py), the routes
(http.py) and their OpenAPI description (openapi.py). docs/STATISTICS.md."""
