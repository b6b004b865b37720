"""Pure arithmetic of the dashboards: k-anonymous aggregation of locations and categories, data completeness,
month series. No Django import."""
