"""Files in and out: feature and audio readers (numpy, Kaldi, WAV), the LFBE front end, atomic writes.
Runtime dependencies only; imports nothing else of kwsint but its errors."""
