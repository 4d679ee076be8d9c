// Sky simulator for the four tasks of TASKS.md.
import FITS
