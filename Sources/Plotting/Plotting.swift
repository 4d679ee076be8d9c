// Raster pictures (PNG through libpng): images, contact sheets, plots.
import CPNG
