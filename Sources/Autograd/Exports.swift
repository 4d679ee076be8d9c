// Every module that uses tensors also draws seeded random numbers (`SeededGenerator`) and
// robust statistics: they come with `import Autograd`.
@_exported import AstroBase
