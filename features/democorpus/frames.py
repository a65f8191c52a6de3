"""The demo corpus's writing style: institutions, sentence frames, invented names and boilerplate (pure data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Institution:
    """A fictional hospital; its house style changes lab formatting and section labels."""

    code: str
    name: str
    lab_style: str
    section_labels: tuple[tuple[str, str], ...]


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split("|") if part.strip())


INSTITUTIONS: tuple[Institution, ...] = (
    Institution(
        "ALDER",
        "Alderbrook Valley Hospital",
        "terse",
        (
            ("hpi", "HPI:"),
            ("assessment_plan", "A/P:"),
            ("labs", "Labs:"),
            ("imaging", "Imaging:"),
            ("medications", "Meds:"),
        ),
    ),
    Institution(
        "BIRCH",
        "Birchmere Regional Medical Center",
        "verbose",
        (
            ("hpi", "HISTORY OF PRESENT ILLNESS:"),
            ("assessment_plan", "ASSESSMENT AND PLAN:"),
            ("labs", "LABORATORY DATA:"),
            ("imaging", "IMAGING:"),
            ("medications", "MEDICATIONS:"),
        ),
    ),
    Institution(
        "CEDAR",
        "Cedarholt University Hospital",
        "reference",
        (
            ("hpi", "History:"),
            ("assessment_plan", "Assessment/Plan:"),
            ("labs", "Results:"),
            ("imaging", "Radiology:"),
            ("medications", "Current medications:"),
        ),
    ),
)

DURATIONS = _split("2 days | 3 days | 5 days | 1 week | several days | 2 weeks | 48 hours | 1 month")
SINCES = _split("yesterday | last night | this morning | 2 days ago | the weekend")
STUDY_TIMES = _split("today | on admission | hospital day 2 | this AM | yesterday")
DESTINATIONS = _split("home | home with home health services | to a skilled nursing facility | to acute rehabilitation")

# Frames: {m} is a mention of the frame's concept ({M} capitalised). Other slots come from its profile
# ({sym}, {lab}, {labnote}, {drug}, {plan}, {status}, {spec}, {mod}/{find}, {treat}, {course}), the patient
# ({age}, {an} the article before it, {sexw}, {sexa}, {sexl}, {pron}, {pos}, {title}, {surname}) or
# context banks ({bg}, {cc}, {dur}, {since}, {when}, {nlab}, {odrug}). {hdrug} is a take-home regimen
# in chart style, {ddrug} one in words; {r_A_B} is an integer in [A, B] and {d_A_B} the same over ten.
# A trailing digit draws another item of the same bank: {plan2} differs from {plan}.
FRAMES: dict[str, tuple[str, ...]] = {
    "hpi": (
        "{age}-year-old {sexw} with a history of {bg} presenting with {sym} for {dur}, found to have {m}.",
        "{age} y/o {sexa} w/ PMH of {bg} who presents with {sym} x {dur}. Workup here consistent with {m}.",
        "Pt is {an} {age}{sexa} with known {m} who presents with {sym} for {dur}.",
        "{Pron} reports {sym} and {sym2} over the past {dur}. Referred in by PCP for {m}.",
        "{age}{sexa} with {m} and {bg}, here with {sym}.",
        "Patient is {an} {age}-year-old {sexl} with longstanding {m} who reports {sym} since {since}.",
        "{M} diagnosed {r_2_15} years ago; now presenting with {sym} and {sym2}.",
        "Presents with {sym}. Found to have {m} in the ED.",
        "{age}-year-old {sexw} with {m} on {hdrug} presents for evaluation of {sym}.",
        "Chief complaint: {sym}. {age} yo {sexa} with h/o {m} and {bg}.",
        "{age}{sexa} sent from clinic with {sym} for {dur}, attributed to worsening {m}.",
        "Per family, {pron} has had {sym} for {dur}. Known {m}, followed by {spec}.",
        "{age} y/o {sexl} w/ {m} (dx {r_2_12} yrs ago) c/o {sym} x {dur}.",
        "{Pron} endorses {sym} and {sym2}. History notable for {m} and {bg}.",
        "Transferred from an outside hospital for management of {m} after presenting with {sym}.",
        "{age}{sexa} with h/o {m} here with {cc}.",
        "{age}-year-old {sexw} with {bg} and {m} presenting with {cc}.",
        "PMH: {m}, {bg}. Presents with {cc}.",
        "Interval history: {sym} since last visit; {m} managed with {hdrug}.",
        "Brought in by EMS with {sym}. Known history of {m}.",
        "{age} yo {sexa} with {m}, last seen by {spec} {r_2_9} months ago, now with {sym}.",
        "HPI: {sym} x {dur} in {an} {age}{sexa} with {m}.",
        "{Pron} was in usual health until {since}, when {pron} developed {sym}; {m} confirmed on workup.",
        "{age}-year-old {sexl} with {m} presents with {sym} after running out of {hdrug}.",
    ),
    "assessment_plan": (
        "#{M}: {plan}; {plan2}.",
        "{M} - {status}. Plan: {plan}, {plan2}.",
        "A/P: {age}{sexa} with {m}, {status}. Next: {plan}.",
        "Assessment: {m}, {status}. Plan: {plan} and {plan2}.",
        "{M}: {plan}. {Plan2}.",
        "Problem: {m}. {Plan}; {plan2}.",
        "# {m} ({status}) - {plan}, {plan2}, {plan3}.",
        "Recommendations for {m}: {plan}; {plan2}.",
        "{M}, {status}: {plan}.",
        "For {m}: {plan}, {plan2}; reassess in AM.",
        "Continue management of {m}: {plan}.",
        "{age}{sexa} w/ {m}, {status}, on {hdrug}. {Plan}.",
        "{M} - {plan}. Appreciate {spec} recommendations.",
        "Dx: {m}. {Plan}. Dispo pending clinical improvement.",
        "{M}: {status}, tolerating {drug}. {Plan}.",
        "Plan for {m}: {plan}, {plan2}, and follow up with {spec}.",
        "Principal problem: {m}. {Plan}.",
        "{M} ({status}). Continue {drug}.",
        "Problem 1: {M}, {status}. {Plan}. {Plan2}.",
        "Impression: {m}, {status}. Discussed with {spec}; {plan}.",
        "{M}: {status}. {Plan}, {plan2}.",
        "Active problem {m}: {plan}; pt agrees with plan.",
    ),
    "labs": (
        "Labs notable for {lab}, {lab2}, consistent with {m}.",
        "{lab}; {lab2}; {lab3}. In keeping with known {m}.",
        "BMP: {nlab}, {lab}, {lab2}. Trend reviewed in context of {m}.",
        "Labs: {lab}, {lab2}, {nlab}. Interpretation: {m}.",
        "{labnote}. {Lab}, supporting {m}.",
        "{M} labs: {lab}, {lab2}.",
        "Pertinent results: {labnote}; {lab}. Attributed to {m}.",
        "{Lab} this AM. {M} being followed with serial labs.",
        "Morning labs reviewed: {lab}, {nlab}, {nlab2}; {m}: {status}.",
        "Results: {labnote}, compatible with {m}.",
        "{Lab}, {lab2} ({m}).",
        "Lab review for {m}: {lab}; {labnote}.",
        "Labs c/w {m}: {lab}, {lab2}.",
        "Notable: {lab}. Also {nlab}, {nlab2}. Consistent with {m}.",
        "{labnote}; {lab}; {nlab}. Dx {m}.",
        "Today: {lab}, {lab2}, {lab3}. Pattern fits {m}.",
        "Chem panel: {nlab}, {nlab2}, {lab}. Known {m}.",
        "{M}: latest {lab}; {labnote}.",
        "Serial labs for {m} show {lab} and {lab2}.",
        "POC and lab results: {lab}; {labnote}. Reflects {m}.",
    ),
    "imaging": (
        "{mod}: {find}. Impression: consistent with {m}.",
        "{mod} shows {find}, in keeping with {m}.",
        "IMPRESSION: {find} on {mod}, compatible with {m}.",
        "{mod} ({when}): {find}. Findings attributed to {m}.",
        "{mod} reviewed with radiology: {find}, typical of {m}.",
        "FINDINGS: {find}. IMPRESSION: {M}.",
        "Per {mod}, {find}; correlates with {m}.",
        "{mod}: {find}, which supports the diagnosis of {m}.",
        "{mod} {when}: {find}. Overall picture c/w {m}.",
        "{mod} demonstrates {find}, as expected with {m}.",
        "Impression: {M}. {mod}: {find}.",
    ),
    "imaging_context": (
        "{mod} obtained for {m} demonstrates {find}.",
        "Imaging: {mod} with {find}. Known {m}.",
        "Indication: {m}. {mod}: {find}.",
        "{mod} today shows {find} in this patient with {m}.",
        "Repeat {mod} shows {find}; followed for {m}.",
        "{mod} ({when}) in the setting of {m}: {find}.",
        "Clinical history: {m}. {mod}: {find}.",
        "{mod}: {find}. {mod2}: {find2}. Ordered as part of the workup of {m}.",
        "Reason for exam: {m}. Result: {find} on {mod}.",
    ),
    "medications": (
        "Continue {drug} for {m}.",
        "Started {drug} for {m}.",
        "Home meds for {m}: {hdrug}; {hdrug2}.",
        "Medications: {drug} ({m}), {odrug}, {odrug2}.",
        "{M} regimen: {drug} and {drug2}.",
        "On {drug} and {drug2} for {m}.",
        "Active meds: 1) {drug} 2) {drug2} 3) {odrug}. Indication for 1-2: {m}.",
        "Rx: {hdrug}, #30, 2 refills. Dx: {m}.",
        "{M}: {drug}; {drug2}.",
        "Inpatient orders: {drug}, {odrug}. Indication: {m}.",
        "Transitioned to {drug} for {m}.",
        "Med rec completed. {M} meds: {drug}, {drug2}.",
        "Pharmacy reviewed dosing of {drug} in the setting of {m}.",
        "Resume home {hdrug} for {m} once tolerating PO.",
        "Titrate {drug} for {m} as tolerated.",
        "{Drug} given in ED for {m}.",
        "Scheduled: {drug}, {odrug}. PRN: {odrug2}. Dx {m}.",
        "{M} - meds today: {drug}; {odrug}.",
        "Current medications include {drug} and {odrug} ({m} and other chronic conditions).",
        "MAR: {drug} administered at 0800 for {m}.",
    ),
}

# A second asserted concept in the same snippet: {m} and the banks belong to that concept.
COMORBID_FRAMES: dict[str, tuple[str, ...]] = {
    "hpi": (
        "PMH also notable for {m}.",
        "Also with a history of {m}.",
        "Other history includes {m} and {bg}.",
        "Comorbid {m}, followed by {spec}.",
        "Known {m}, on {hdrug}.",
    ),
    "assessment_plan": (
        "#{M}: {plan}.",
        "{M} - {status}; {plan}.",
        "{M}: continue {drug}.",
        "Secondary problem {m}: {plan}.",
    ),
    "labs": ("Also {lab} from known {m}.", "{Lab} reflects underlying {m}.", "{Labnote} ({m})."),
    "imaging": ("Background of {m}.", "Comparison limited; patient with known {m}.", "Additional history: {m}."),
    "medications": ("Also on {drug} for {m}.", "Continue {drug} for {m}.", "{M}: {drug}."),
}
COMORBID_PAIR_FRAMES = (
    "PMH also notable for {a} and {b}.",
    "Comorbidities: {a}, {b}.",
    "Other active problems: {a} and {b}.",
    "Also followed for {a} and {b}.",
)

# Each cue stands before the mention, at most a few words from it.
NEGATION_FRAMES: dict[str, tuple[str, ...]] = {
    "any": (
        "No evidence of {m}.",
        "Denies history of {m}.",
        "Negative for {m}.",
        "No signs of {m}.",
        "No known {m}.",
        "Without evidence of {m}.",
        "No prior history of {m}.",
        "{Pron} denies any prior {m}.",
        "Never diagnosed with {m}.",
    ),
    "hpi": ("Denies prior {m}.", "No personal or family history of {m}."),
    "assessment_plan": (
        "No clinical evidence of {m} at this time.",
        "Not consistent with {m}.",
        "No features to suggest {m}.",
    ),
    "labs": ("No laboratory evidence of {m}.", "Labs without evidence of {m}."),
    "imaging": (
        "No radiographic evidence of {m}.",
        "No acute findings to suggest {m}.",
        "Imaging without signs of {m}.",
    ),
    "medications": ("No medications for {m}.", "Not on treatment for {m}."),
}
UNCERTAINTY_FRAMES: dict[str, tuple[str, ...]] = {
    "any": (
        "Cannot rule out {m}.",
        "Possible {m}.",
        "R/o {m}.",
        "Concern for {m}.",
        "Cannot exclude early {m}.",
        "Differential includes {m}.",
        "Suspected {m}, workup in progress.",
        "Evaluate for possible {m}.",
        "Question of {m} raised by ED.",
    ),
    "imaging": ("Findings may represent {m}.", "Questionable {m}; clinical correlation recommended."),
    "labs": ("Possible early {m}; repeat labs in AM.",),
    "assessment_plan": ("Rule out {m}.", "Possible {m}; will reassess."),
    "hpi": ("Possible {m} per outside records.",),
    "medications": ("Empiric coverage for possible {m}.",),
}
# Sentences with no concept at all, for realistic context.
FILLER_FRAMES: dict[str, tuple[str, ...]] = {
    "hpi": (
        "Denies fevers, chills or night sweats.",
        "No recent travel or sick contacts.",
        "Lives alone, independent in ADLs.",
        "Former smoker, {r_10_40} pack-years.",
        "Vitals on arrival: T 37.{r_0_8} C, HR {r_72_118}, BP {r_104_168}/{r_58_96}, RR {r_14_24}, "
        "SpO2 {r_91_99}% on RA.",
    ),
    "assessment_plan": (
        "Code status: full code.",
        "DVT prophylaxis with SC heparin.",
        "Dispo: home when medically stable.",
        "PT/OT evaluation ordered.",
        "Diet: regular as tolerated.",
    ),
    "labs": (
        "CBC otherwise unremarkable.",
        "LFTs within normal limits.",
        "{Nlab}, {nlab2}.",
        "Coags within normal limits.",
    ),
    "imaging": (
        "Comparison: none available.",
        "Prior studies reviewed.",
        "Study limited by motion artifact.",
        "Preliminary read discussed with the radiologist.",
    ),
    "medications": (
        "Allergies: NKDA.",
        "Allergies: penicillin (rash).",
        "Med rec reviewed with pharmacy.",
        "Also taking {odrug}.",
    ),
}

# Discharge-summary narrative (the out-of-distribution slice).
NARRATIVE_INTRO_FRAMES = (
    "The patient is {an} {age}-year-old {sexw} with a history of {hist} who was admitted with {sym} and was "
    "found to have {m}.",
    "{Title} {surname} is {an} {age}-year-old {sexw} with {hist} who presented to the emergency department "
    "with {sym} and was admitted for management of {m}.",
    "This {age}-year-old {sexw} with a past medical history of {hist} was admitted to the medicine service "
    "for {m} after {pron} developed {sym} over {dur}.",
    "The patient, {an} {age}-year-old {sexw} with {hist}, was admitted on {date} with {m}, having presented "
    "with {sym}.",
    "{Title} {surname} was admitted for {m}. {Pron} is {an} {age}-year-old {sexw} with {hist} who had noted "
    "{sym} for {dur} before presentation.",
    "{Title} {surname}, {an} {age}-year-old {sexw} known to have {hist}, was brought to the hospital by "
    "{pos} family because of {sym} and was diagnosed with {m}.",
)
NARRATIVE_COURSE_FRAMES = (
    "{Pron} was treated with {treat}, and {course}.",
    "During the hospital course {pron} received {treat}; {course}.",
    "Over the following {r_2_6} days {pron} was managed with {treat}, and {course}.",
    "The hospital course was notable for {treat}, after which {course}.",
    "The {spec} service was consulted and recommended {treat}; {course}.",
)
NARRATIVE_COMORBID_FRAMES = (
    "{Pos} {m} was managed with {ddrug} and remained stable.",
    "{Pos} course was complicated by {m}, which was treated with {treat}.",
    "{Pos} known {m} was addressed, and {pron} was continued on {ddrug}.",
    "In addition, {pron} was found to have {m} and was started on {ddrug}.",
)
NARRATIVE_DISCHARGE_FRAMES = (
    "{Pron} was discharged {dest} on {ddrug} with follow-up in the {spec} clinic in {r_2_4} weeks.",
    "At the time of discharge {pron} was ambulating independently and was sent {dest} on {ddrug} and {odrugn}.",
    "{Pron} will continue {ddrug} after discharge and will see {pos} primary care physician within {r_5_14} days.",
    "Discharge diagnoses included {m} and {bgone}; {pron} was discharged {dest}.",
    "{Pron} was discharged {dest} in stable condition on {ddrug}, with instructions to return for worsening symptoms.",
)
NARRATIVE_NEGATION_FRAMES = (
    "A study obtained during the admission showed no evidence of {m}.",
    "There was no evidence of {m} during the stay.",
    "{Pron} denied any prior history of {m}.",
    "{Pron} had no signs of {m} throughout the admission.",
)
NARRATIVE_UNCERTAINTY_FRAMES = (
    "Outpatient evaluation for possible {m} was recommended.",
    "Imaging raised concern for {m}, which will be reassessed as an outpatient.",
    "Follow-up testing was arranged to evaluate for possible {m}.",
    "Possible {m} was noted, and a repeat study was advised.",
)

# Invented people and documents: no name here belongs to a real person.
FIRST_NAMES = _split(
    "Aurelia | Bastian | Corrin | Delphine | Emrys | Fenna | Galen | Hollis | Ilse | Jory | "
    "Kestrel | Linnea | Marek | Niamh | Orrin | Petra | Quill | Rosalind | Soren | Talia | "
    "Ulric | Vesna | Wren | Yannick"
)
SURNAMES = _split(
    "Ambervale | Brackwater | Cindergrove | Dunmarrow | Elderwick | Fallowmere | Glenthorne | "
    "Hazelrigg | Ivorstone | Juniperlee | Kettleby | Larkspur | Mosswood | Nettlefold | "
    "Oakhurst-Vale | Pennywhistle | Quarrington | Rookwell | Silverthane | Thistlecombe | "
    "Umberfield | Wrenmoor"
)
CREDENTIALS = ("MD", "DO", "MD, PhD", "NP", "PA-C")
BOILERPLATE_FRAMES: tuple[tuple[str, str], ...] = (
    ("signature", "Electronically signed by {clinician}, {credential} on {date} at {time}."),
    ("signature", "Dictated but not read. Transcribed by tx-{r_1000_9999} on {date}."),
    ("footer", "Page {r_1_2} of {r_3_4}"),
    ("header", "{institution} - Department of Internal Medicine - Progress Note"),
    ("header", "Patient: {patient}   MRN: {r_10_99}-{r_100_999}-{r_100_999}   DOB: {dob}"),
    ("footer", "This note was created with voice recognition software; please excuse transcription errors."),
    (
        "signature",
        "Attending attestation: I saw and examined the patient and agree with the resident's "
        "findings and plan as documented above.",
    ),
    (
        "disclaimer",
        "CONFIDENTIAL: this document contains protected health information. Unauthorized disclosure is prohibited.",
    ),
    ("signature", "Cosigned by {clinician}, {credential}. Date/Time: {date} {time}"),
    ("footer", "Printed on {date} {time} by user {r_1000_9999}. Page {r_2_3} of {r_3_5}"),
    ("header", "*** Addendum *** See below for additional documentation."),
    ("footer", "Continued on next page"),
    ("signature", "cc: {clinician}, {credential} (PCP). Callback 555-01{r_10_99}."),
    ("header", "{institution} | Encounter {r_100000_999999} | Visit date {date}"),
    ("signature", "Note started {date} {time}; last edited by {clinician}, {credential}."),
    ("footer", "END OF REPORT"),
)
DISCHARGE_BOILERPLATE_FRAMES: tuple[tuple[str, str], ...] = (
    ("header", "DISCHARGE SUMMARY. {institution}. Admission date: {date}. Discharge date: {date2}."),
    ("signature", "Discharging attending: {clinician}, {credential}. Electronically signed {date2} at {time}."),
    ("footer", "Copies of this summary were sent to the primary care office on file. Page {r_1_2} of {r_3_4}."),
)
