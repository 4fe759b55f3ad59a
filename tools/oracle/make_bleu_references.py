"""Reference values for Sharpformer's corpus BLEU and chrF (tests/Sharpformer.Tests/Generation/BleuTests.cs).

Run with Debian's NLTK:  apt-get install -y python3-nltk && /usr/bin/python3 tools/oracle/make_bleu_references.py

sacreBLEU (the definition Sharpformer follows) is not packaged by Debian, so the script checks against NLTK
and states exactly what is compared, per case:
  tokens      13a tokenization of every sentence, by the regular expressions of sacreBLEU's tokenizer_13a /
              tokenizer_re, run here with Python's re (the C# port must give the same strings);
  matches[n]  sum over sentences of NLTK's modified_precision(refs, hyp, n).numerator (clipped n-gram matches);
  totals[n]   sum over sentences of len(list(nltk.util.ngrams(hyp, n))) (hypothesis n-grams; sacreBLEU's total);
  hyp_len, ref_len   sum of hypothesis lengths, sum of NLTK's closest_ref_length (ties to the shorter, as sacreBLEU);
  nltk_bleu   100 * NLTK corpus_bleu(..., smoothing_function=SmoothingFunction().method3) on the 13a tokens, only
              for cases where every hypothesis has at least 4 tokens, else null. method3 is NIST's geometric
              smoothing (the k-th zero-match order gets 1/(2^k * denominator)), the same as sacreBLEU's default
              'exp'. For shorter hypotheses the two differ by definition: NLTK counts max(1, len - n + 1) n-grams per
              sentence where sacreBLEU counts len - n + 1 (so 0), and sacreBLEU stops at the first order with no
              n-grams at all; hence null there;
  bleu        sacreBLEU's compute_bleu(smooth_method='exp') applied to the NLTK statistics above, transcribed below
              from sacrebleu/metrics/bleu.py (2.x); given for every case, including short and empty hypotheses;
  chrf        sacreBLEU's default chrF (char order 6, beta 2, whitespace removed, no eps smoothing), transcribed
              below from sacrebleu/metrics/chrf.py; NLTK's chrF is a different definition and is not used.
"""
import json
import math
import os
import re
import warnings
from collections import Counter

from nltk.translate.bleu_score import (SmoothingFunction, closest_ref_length, corpus_bleu, modified_precision)
from nltk.util import ngrams

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "Sharpformer.Tests", "OracleData", "bleu_references.json")

REGEXES = [
    (re.compile(r'([\{-\~\[-\` -\&\(-\+\:-\@\/])'), r' \1 '),
    (re.compile(r'([^0-9])([\.,])'), r'\1 \2 '),
    (re.compile(r'([\.,])([^0-9])'), r' \1 \2'),
    (re.compile(r'([0-9])(-)'), r'\1 \2 '),
]


def tokenize_13a(line):
    line = line.replace('<skipped>', '').replace('-\n', '').replace('\n', ' ')
    if '&' in line:
        line = line.replace('&quot;', '"').replace('&amp;', '&').replace('&lt;', '<').replace('&gt;', '>')
    line = f' {line} '
    for regex, replacement in REGEXES:
        line = regex.sub(replacement, line)
    return ' '.join(line.split())


def words(sentence):
    return tokenize_13a(sentence.rstrip()).split()


def sacrebleu_from_stats(correct, total, sys_len, ref_len):
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    precisions = [0.0] * 4
    if not any(correct):
        return 0.0
    smooth_mteval = 1.0
    for n in range(1, 5):
        if total[n - 1] == 0:
            break
        if correct[n - 1] == 0:
            smooth_mteval *= 2
            precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1])
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    my_log = lambda p: -9999999999 if p == 0.0 else math.log(p)
    return bp * math.exp(sum(my_log(p) for p in precisions) / 4)


def chrf(hyps, refs, order=6, beta=2):
    def grams(line):
        line = ''.join(line.split())
        return [Counter(line[i:i + n] for i in range(len(line) - n + 1)) for n in range(1, order + 1)]
    stats = [0] * (3 * order)
    for h, r in zip(hyps, refs):
        for n, (hc, rc) in enumerate(zip(grams(h), grams(r))):
            match = sum(min(c, rc[g]) for g, c in hc.items() if g in rc)
            stats[3 * n] += sum(hc.values()) if rc else 0
            stats[3 * n + 1] += sum(rc.values())
            stats[3 * n + 2] += match
    factor = beta ** 2
    avg_prec = avg_rec = 0.0
    effective = 0
    for n in range(order):
        n_hyp, n_ref, n_match = stats[3 * n:3 * n + 3]
        if n_hyp > 0 and n_ref > 0:
            avg_prec += n_match / n_hyp
            avg_rec += n_match / n_ref
            effective += 1
    if effective == 0:
        return 0.0
    avg_prec /= effective
    avg_rec /= effective
    if avg_prec + avg_rec == 0:
        return 0.0
    return 100 * (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec)


CASES = {
    "perfect": ([
        "The cat sat on the mat.", "Open the file before you save it."],
        [["The cat sat on the mat.", "Open the file before you save it."]]),
    "typical": ([
        "the cat is sitting on the mat today", "could not open the requested file for reading",
        "the quick brown fox jumped over a lazy dog"],
        [["the cat sat on the mat", "the requested file could not be opened for reading",
          "the quick brown fox jumps over the lazy dog"]]),
    "no_four_gram_match": ([
        "a b c d e f", "g h i j k l"],
        [["a b c x d e f", "g h x i j x k l"]]),
    "punctuation_13a": ([
        "Hello, world! It's 3.5 km-long (roughly)...", "&quot;Quoted&quot; &amp; escaped: 1,000.50 people; e-mail 2-3 times",
        "Path /usr/share/locale, {braces} [brackets] and $5.", "Zeile mit\nUmbruch und Trenn-\nstrich ende."],
        [["Hello , world ! It is 3.5 km long (roughly).", "\"Quoted\" & escaped: 1,000.50 people; email 2 - 3 times",
          "Path /usr/share/locale, {braces} [brackets] and $5 .", "Zeile mit Umbruch und Trennstrich ende."]]),
    "german_umlauts": ([
        "Größere Änderungen übernehmen?", "Die Datei konnte nicht geöffnet werden."],
        [["Größere Änderungen speichern?", "Die Datei »Übersicht« konnte nicht geöffnet werden."]]),
    "short_sentences": ([
        "Open", "Save file", "Quit now please", "Close all the windows now"],
        [["Open", "Save the file", "Quit now", "Close all windows now"]]),
    "only_short": ([
        "Yes", "No thanks"],
        [["Yes", "No thank you"]]),
    "with_empty_hypothesis": ([
        "the file was saved to disk", "", "could not connect to the server"],
        [["the file was saved to the disk", "Operation cancelled", "could not connect to server"]]),
    "all_empty_hypotheses": ([
        "", ""],
        [["Something here", "And here"]]),
    "no_unigram_match": ([
        "alpha beta gamma delta", "epsilon zeta eta theta"],
        [["one two three four", "five six seven eight"]]),
    "brevity_penalty": ([
        "the cat sat on", "please open the"],
        [["the cat sat on the mat today", "please open the file in the editor"]]),
    "trailing_whitespace": ([
        "  leading and trailing spaces stay fine   ", "tab\tseparated words here\t"],
        [["leading and trailing spaces stay fine", "tab separated words here"]]),
    "two_references": ([
        "the cat is on the mat", "there is a cat on the mat", "it is a guide to action"],
        [["the cat is on the mat", "a cat sits on the mat", "it is a guide to action which ensures"],
         ["there is a cat on the mat", "the cat is on the mat", "it is the guide to action that ensures"]]),
}


def main():
    warnings.simplefilter("ignore")
    out = {}
    for name, (hyps, streams) in CASES.items():
        hyp_words = [words(h) for h in hyps]
        ref_words = [[words(stream[i]) for stream in streams] for i in range(len(hyps))]
        matches, totals = [0] * 4, [0] * 4
        for refs, hyp in zip(ref_words, hyp_words):
            for n in range(1, 5):
                matches[n - 1] += int(modified_precision(refs, hyp, n).numerator)
                totals[n - 1] += len(list(ngrams(hyp, n)))
        hyp_len = sum(len(h) for h in hyp_words)
        ref_len = sum(closest_ref_length(refs, len(h)) for refs, h in zip(ref_words, hyp_words))
        comparable = all(len(h) >= 4 for h in hyp_words)
        nltk_bleu = 100 * corpus_bleu(ref_words, hyp_words, smoothing_function=SmoothingFunction().method3) if comparable else None
        bleu = sacrebleu_from_stats(matches, totals, hyp_len, ref_len)
        if nltk_bleu is not None:
            assert math.isclose(nltk_bleu, bleu, rel_tol=1e-12, abs_tol=1e-12), (name, nltk_bleu, bleu)
        out[name] = {
            "hypotheses": hyps,
            "references": streams,
            "tokens": {s: tokenize_13a(s.rstrip()) for s in hyps + [r for st in streams for r in st]},
            "matches": matches, "totals": totals, "hyp_len": hyp_len, "ref_len": ref_len,
            "nltk_bleu": nltk_bleu, "bleu": bleu,
            "chrf": chrf(hyps, streams[0]),
        }
        print(f"{name:24s} BLEU {bleu:8.4f}  NLTK {'' if nltk_bleu is None else f'{nltk_bleu:8.4f}'}  chrF {out[name]['chrf']:8.4f}")
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
