// FITS I/O on cfitsio. See FITSFile.swift and friends.
import CFITSIO
