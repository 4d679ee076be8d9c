// Stages are described with the stretches, intervals, statistics and seeded generator of
// AstroBase: they come with `import Preprocessing`.
@_exported import AstroBase
