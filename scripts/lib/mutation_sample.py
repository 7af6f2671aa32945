"""Pick an evenly spaced sample of the mutants in ./.mutmut-cache; print the ids still to run.

Called by scripts/mutation after every mutant was listed by a runner that tests nothing: those
false results are reset, the baseline time of that runner is forgotten, and the mutants of the
sample that an earlier run killed are left out (mutmut keeps a killed mutant killed).
"""
import sqlite3
import sys

db = sqlite3.connect(".mutmut-cache")
killed = {i for (i,) in db.execute("SELECT id FROM Mutant WHERE status = 'ok_killed'")}
db.execute("UPDATE Mutant SET status = 'untested', tested_against_hash = ''"
           " WHERE status <> 'ok_killed'")
db.execute("DELETE FROM MiscData WHERE key LIKE 'baseline_time%'")
db.commit()
ids = [i for (i,) in db.execute("SELECT id FROM Mutant ORDER BY id")]
n = min(int(sys.argv[1]), len(ids))
picked = [ids[k * len(ids) // n] for k in range(n)]
print(" ".join(str(i) for i in picked if i not in killed))
