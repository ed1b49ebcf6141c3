"""Sample bundles and the bundle builders pyrunc's tests and README use."""
