"""Pure planners: one module per strategy, each turning a spec into the steps to interpret."""
