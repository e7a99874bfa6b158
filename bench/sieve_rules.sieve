# The 20-rule script of bench/sieve_run.sh and bench/ingest_instructions.sh (INGEST_SIEVE):
# rules of the kinds people write; none matches the load's mail but the last, which flags it.
require ["fileinto", "imap4flags", "variables", "relational", "comparator-i;ascii-numeric", "envelope", "subaddress", "body"];
if header :contains "subject" "project-1" { fileinto "Projects/P1"; stop; }
if header :contains "subject" "project-2" { fileinto "Projects/P2"; stop; }
if header :contains "subject" "project-3" { fileinto "Projects/P3"; stop; }
if header :contains "subject" "project-4" { fileinto "Projects/P4"; stop; }
if header :contains "subject" "project-5" { fileinto "Projects/P5"; stop; }
if header :contains "subject" "project-6" { fileinto "Projects/P6"; stop; }
if header :contains "subject" "project-7" { fileinto "Projects/P7"; stop; }
if header :contains "subject" "project-8" { fileinto "Projects/P8"; stop; }
if address :domain :is "from" "list1.example" { fileinto "Lists/L1"; stop; }
if address :domain :is "from" "list2.example" { fileinto "Lists/L2"; stop; }
if address :domain :is "from" "list3.example" { fileinto "Lists/L3"; stop; }
if address :domain :is "from" "list4.example" { fileinto "Lists/L4"; stop; }
if header :matches "List-Id" "*<*.*>*" { fileinto "lists/${2}"; stop; }
if envelope :detail "to" "spam" { fileinto "Junk"; stop; }
if header :value "gt" :comparator "i;ascii-numeric" "X-Spam-Score" "10" { discard; stop; }
if exists "X-Never-There" { fileinto "Never"; }
if size :over 10M { fileinto "Big"; stop; }
if anyof (header :is "Precedence" "bulk", header :contains "Auto-Submitted" "auto") { fileinto "Auto"; stop; }
if address :localpart :is "to" "nobody" { discard; stop; }
if address :domain :is "from" "hato-bench.example" { addflag "$bench"; }
